"""Imports every table so that SQLModel.metadata knows them all (Alembic)."""

from consent.audit.models import (
    AuditCheckpoint,
    AuditCosignature,
    AuditEntry,
    AuditHead,
    AuditNode,
)
from consent.grants.models import Grant, GrantChange
from consent.notices.models import VendorNotice
from consent.oauth.models import (
    AuthorizationCode,
    ClientAssertion,
    DeviceAuthorization,
    OAuthToken,
)
from consent.vendors.models import InitialAccessToken, Vendor
from vrm.accounts.models import Customer, LoginSession, LoginThrottle
from vrm.feed.models import DataChange, FeedClock, FeedNotice
from vrm.history.deposits import VendorDeposit
from vrm.history.models import HistoryRecord
from vrm.history.pending import PendingDeposit
from vrm.keys.models import DataKey
from vrm.records.models import DocumentRecord
from vrm.vendor_api.models import AccessEvent

__all__ = [
    "AccessEvent",
    "AuditCheckpoint",
    "AuditCosignature",
    "AuditEntry",
    "AuditHead",
    "AuditNode",
    "AuthorizationCode",
    "ClientAssertion",
    "Customer",
    "DataChange",
    "DataKey",
    "DeviceAuthorization",
    "DocumentRecord",
    "FeedClock",
    "FeedNotice",
    "Grant",
    "GrantChange",
    "HistoryRecord",
    "InitialAccessToken",
    "LoginSession",
    "LoginThrottle",
    "OAuthToken",
    "PendingDeposit",
    "Vendor",
    "VendorDeposit",
    "VendorNotice",
]
