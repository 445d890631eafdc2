"""Every operation of the customer API in the served OpenAPI document has
its call in client/calls.py, and every call names an operation there: a
route added to the server without the SDK, or a path mistyped in the SDK,
fails here. And the two clients offer the same methods."""

from __future__ import annotations

import inspect
import re
from datetime import UTC, datetime

import httpx

from client import (
    AccessLogFilter,
    AsyncVRMClient,
    HistoryFilter,
    NewEvent,
    Preferences,
    Profile,
    VRMClient,
    calls,
)
from client.calls import Call
from tests.liveserver import LiveServer

ID = "ID-PLACEHOLDER"
INDEX = 987654321
WHEN = datetime(2026, 12, 1, tzinfo=UTC)

EVERY_CALL: list[Call[object]] = [
    calls.sign_up("a@example.org", "pw"),
    calls.log_in("a@example.org", "pw"),
    calls.recover("a@example.org", "KEY", "pw2"),
    calls.log_out(),
    calls.me(),
    calls.change_password("pw", "pw2"),
    calls.delete_account("pw"),
    calls.sessions(),
    calls.end_session(ID),
    calls.read_profile(),
    calls.replace_profile(Profile(), None),
    calls.patch_profile({}, None),
    calls.read_preferences(),
    calls.replace_preferences(Preferences(), None),
    calls.patch_preferences({}, None),
    calls.history_page(HistoryFilter(), None, None),
    calls.add_event(NewEvent(vendor="v", type="visit", occurred_at=WHEN)),
    calls.read_event(ID),
    calls.patch_event(ID, {}, None),
    calls.delete_event(ID),
    calls.grants(),
    calls.read_grant(ID),
    calls.change_grant(ID, ["preferences:read"], None),
    calls.revoke_grant(ID),
    calls.grant_receipt(ID),
    calls.access_log_page(AccessLogFilter(), None, None),
    calls.access_receipt(INDEX),
    calls.export(),
    calls.export_schema(),
]


def _template(path: str) -> str:
    return path.replace(ID, "{}").replace(str(INDEX), "{}")


def test_the_sdk_covers_every_customer_operation_and_no_other(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/openapi.json", timeout=10)
    assert r.status_code == 200, r.text
    served = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in r.json()["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
        if method in {"get", "put", "post", "patch", "delete"}
    }
    sent = {(call.method, _template(call.path)) for call in EVERY_CALL}
    assert sent == served


def _methods(cls: type) -> dict[str, list[tuple[str, object]]]:
    return {
        name: [(p.name, p.default) for p in inspect.signature(method).parameters.values()]
        for name, method in vars(cls).items()
        if callable(method) and not name.startswith("_")
    }


def test_the_async_client_offers_every_method_of_the_blocking_one() -> None:
    assert _methods(AsyncVRMClient) == _methods(VRMClient)
