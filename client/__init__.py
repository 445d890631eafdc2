"""Customer side: the Python SDK and the ``vrm-me`` CLI (client/cli/).

``VRMClient`` and ``AsyncVRMClient`` speak the customer API over HTTP only
(never importing the server: lint-imports holds it); docs/client.md shows
them in use. Every failure is a :class:`VRMError` (client/errors.py).
"""

from client.aio import AsyncVRMClient
from client.calls import AccessLogFilter, HistoryFilter
from client.device import BearerAuth, DeviceCode, Tokens
from client.errors import VRMError, VRMTransportError
from client.models import (
    Account,
    AuditReceipt,
    Budget,
    Communication,
    Event,
    Grant,
    GrantChange,
    Item,
    LogEntry,
    LoggedIn,
    LoginSession,
    NewAccount,
    NewEvent,
    Page,
    PostalAddress,
    Preferences,
    Profile,
    QuietHours,
    Shopping,
    VendorAsConsented,
    VendorSummary,
)
from client.sync import VRMClient

__all__ = [
    "AccessLogFilter",
    "Account",
    "AsyncVRMClient",
    "AuditReceipt",
    "BearerAuth",
    "Budget",
    "Communication",
    "DeviceCode",
    "Event",
    "Grant",
    "GrantChange",
    "HistoryFilter",
    "Item",
    "LogEntry",
    "LoggedIn",
    "LoginSession",
    "NewAccount",
    "NewEvent",
    "Page",
    "PostalAddress",
    "Preferences",
    "Profile",
    "QuietHours",
    "Shopping",
    "Tokens",
    "VRMClient",
    "VRMError",
    "VRMTransportError",
    "VendorAsConsented",
    "VendorSummary",
]
