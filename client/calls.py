"""Each request of the customer API, described once.

A function here says what one operation sends (method, path, query, body,
headers) and how its answer is read; it sends nothing. :class:`client.VRMClient`
and :class:`client.AsyncVRMClient` each send a :class:`Call` their own way
(``httpx.Client.send`` or ``await httpx.AsyncClient.send``), so the two
clients are thin and cannot drift apart on what a request is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from client.errors import VRMError, VRMTransportError
from client.models import (
    Account,
    AuditReceipt,
    Event,
    EventType,
    Grant,
    Label,
    LogEntry,
    LoggedIn,
    LoginSession,
    NewAccount,
    NewEvent,
    Page,
    Preferences,
    Profile,
    Recovered,
    Tagged,
    _Items,
)

# Seconds a request of the SDK (and of vrm-me's login) may take.
DEFAULT_TIMEOUT = 10.0

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

API = "/api/v1"
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request, and how to read its 2xx answer into a ``T``."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    body: Any = None
    content_type: str = JSON
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    def request(self, http: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        headers = dict(self.headers)
        content = None
        if self.body is not None:
            headers["Content-Type"] = self.content_type
            content = json.dumps(to_jsonable_python(self.body), ensure_ascii=False).encode()
        return http.build_request(
            self.method, self.path, params=self.params, headers=headers, content=content
        )

    def failed(self, request: httpx.Request, error: httpx.RequestError) -> VRMTransportError:
        """No answer: one line naming the request, without its query (the
        clients raise it)."""
        url = str(request.url.copy_with(query=None))
        return VRMTransportError.wrap(self.method, url, error)

    def answer(self, response: httpx.Response) -> T:
        """The answer read, or :class:`VRMError` with its problem details."""
        if not response.is_success:
            raise VRMError.from_response(response)
        try:
            return self.read(response)
        except ValueError as error:
            # pydantic's ValidationError and json's decoding errors. Only the
            # first line: the rest quotes the values, which are personal.
            raise VRMError(
                f"The answer to {self.method} {self.path} is not what the SDK expects: "
                f"{str(error).splitlines()[0]}",
                status=response.status_code,
            ) from error


# ``on_progress(received, total)``: bytes of the answer so far, and its
# Content-Length (None when the server sent none).
Progress = Callable[[int, int | None], None]
_REREAD = {"content-encoding", "content-length", "transfer-encoding"}


def length_of(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length", "")
    return int(length) if length.isdigit() else None


def whole(response: httpx.Response, body: bytes) -> httpx.Response:
    """An answer read piece by piece (to report progress), whole again, as
    :meth:`Call.answer` reads it: its body already decoded."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _REREAD]
    return httpx.Response(
        response.status_code, headers=headers, content=body, request=response.request
    )


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    return lambda r: model.model_validate_json(r.content)


def _tagged(model: type[M]) -> Callable[[httpx.Response], M]:
    def read(response: httpx.Response) -> M:
        value = model.model_validate_json(response.content)
        if isinstance(value, Tagged):
            value._etag = response.headers.get("etag")
        return value

    return read


def _nothing(response: httpx.Response) -> None:
    return None


def _if_match(etag: str | None) -> dict[str, str]:
    return {"If-Match": etag} if etag is not None else {}


def _segment(value: str) -> str:
    # An id goes into the path as one segment, whatever it holds.
    return quote(value, safe="")


def _query(**values: str | int | datetime | None) -> dict[str, str]:
    query: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        query[name] = value.isoformat() if isinstance(value, datetime) else str(value)
    return query


def _document(model: BaseModel) -> dict[str, Any]:
    # Members left unset stay out of the body; the server reads them as empty.
    return model.model_dump(mode="json", exclude_none=True)


# Account and session


def sign_up(email: str, password: str) -> Call[NewAccount]:
    return Call(
        "POST", f"{API}/accounts", _model(NewAccount), body={"email": email, "password": password}
    )


def recover(email: str, recovery_key: str, new_password: str) -> Call[str]:
    body = {"email": email, "recovery_key": recovery_key, "new_password": new_password}
    return Call("POST", f"{API}/recovery", lambda r: _model(Recovered)(r).recovery_key, body=body)


def log_in(email: str, password: str) -> Call[LoggedIn]:
    return Call(
        "POST", f"{API}/session", _model(LoggedIn), body={"email": email, "password": password}
    )


def log_out() -> Call[None]:
    return Call("DELETE", f"{API}/session", _nothing)


def me() -> Call[Account]:
    return Call("GET", f"{API}/me", _model(Account))


def change_password(current_password: str, new_password: str) -> Call[None]:
    body = {"current_password": current_password, "new_password": new_password}
    return Call("PUT", f"{API}/me/password", _nothing, body=body)


def delete_account(password: str) -> Call[None]:
    return Call("DELETE", f"{API}/me", _nothing, body={"password": password})


def sessions() -> Call[list[LoginSession]]:
    return Call("GET", f"{API}/me/sessions", lambda r: _model(_Items[LoginSession])(r).items)


def end_session(session_id: str) -> Call[None]:
    return Call("DELETE", f"{API}/me/sessions/{_segment(session_id)}", _nothing)


# Profile and preferences


def read_profile() -> Call[Profile]:
    return _read_document("profile", Profile)


def replace_profile(profile: Profile, if_match: str | None) -> Call[Profile]:
    return _replace_document("profile", profile, if_match)


def patch_profile(patch: Mapping[str, Any], if_match: str | None) -> Call[Profile]:
    return _patch_document("profile", Profile, patch, if_match)


def read_preferences() -> Call[Preferences]:
    return _read_document("preferences", Preferences)


def replace_preferences(preferences: Preferences, if_match: str | None) -> Call[Preferences]:
    return _replace_document("preferences", preferences, if_match)


def patch_preferences(patch: Mapping[str, Any], if_match: str | None) -> Call[Preferences]:
    return _patch_document("preferences", Preferences, patch, if_match)


# The profile and the preferences are documents of one shape of API.
D = TypeVar("D", Profile, Preferences)


def _read_document(name: str, model: type[D]) -> Call[D]:
    return Call("GET", f"{API}/me/{name}", _tagged(model))


def _replace_document(name: str, document: D, if_match: str | None) -> Call[D]:
    return Call(
        "PUT",
        f"{API}/me/{name}",
        _tagged(type(document)),
        body=_document(document),
        headers=_if_match(if_match),
    )


def _patch_document(
    name: str, model: type[D], patch: Mapping[str, Any], if_match: str | None
) -> Call[D]:
    return Call(
        "PATCH",
        f"{API}/me/{name}",
        _tagged(model),
        body=dict(patch),
        content_type=MERGE_PATCH,
        headers=_if_match(if_match),
    )


# History


@dataclass(frozen=True)
class HistoryFilter:
    """What ``GET /me/history`` keeps: ``vendor`` (exact, case-insensitive),
    ``type``, ``label``, ``since`` (inclusive), ``until`` (exclusive)."""

    vendor: str | None = None
    type: EventType | None = None
    label: Label | None = None
    since: datetime | None = None
    until: datetime | None = None


def history_page(
    filters: HistoryFilter, cursor: str | None, limit: int | None
) -> Call[Page[Event]]:
    params = _query(
        vendor=filters.vendor,
        type=filters.type,
        label=filters.label,
        since=filters.since,
        until=filters.until,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", f"{API}/me/history", _model(Page[Event]), params=params)


def add_event(event: NewEvent) -> Call[Event]:
    return Call("POST", f"{API}/me/history", _tagged(Event), body=_document(event))


def read_event(event_id: str) -> Call[Event]:
    return Call("GET", f"{API}/me/history/{_segment(event_id)}", _tagged(Event))


def patch_event(event_id: str, patch: Mapping[str, Any], if_match: str | None) -> Call[Event]:
    return Call(
        "PATCH",
        f"{API}/me/history/{_segment(event_id)}",
        _tagged(Event),
        body=dict(patch),
        content_type=MERGE_PATCH,
        headers=_if_match(if_match),
    )


def delete_event(event_id: str) -> Call[None]:
    return Call("DELETE", f"{API}/me/history/{_segment(event_id)}", _nothing)


# Grants


def grants() -> Call[list[Grant]]:
    return Call("GET", f"{API}/me/grants", lambda r: _model(_Items[Grant])(r).items)


def read_grant(grant_id: str) -> Call[Grant]:
    return Call("GET", f"{API}/me/grants/{_segment(grant_id)}", _model(Grant))


def change_grant(
    grant_id: str, scopes: list[str] | None, expires_at: datetime | None
) -> Call[Grant]:
    body: dict[str, Any] = {}
    if scopes is not None:
        body["scopes"] = scopes
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    return Call("PATCH", f"{API}/me/grants/{_segment(grant_id)}", _model(Grant), body=body)


def revoke_grant(grant_id: str) -> Call[None]:
    return Call("DELETE", f"{API}/me/grants/{_segment(grant_id)}", _nothing)


def grant_receipt(grant_id: str) -> Call[str]:
    return Call("GET", f"{API}/me/grants/{_segment(grant_id)}/receipt", lambda r: r.text)


# Access log


@dataclass(frozen=True)
class AccessLogFilter:
    """What ``GET /me/access-log`` keeps: ``vendor`` (client id), ``type``
    (a family such as ``data`` or ``consent``, or a whole type such as
    ``data.read``), ``since`` (inclusive), ``until`` (exclusive)."""

    vendor: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def access_log_page(
    filters: AccessLogFilter, cursor: str | None, limit: int | None
) -> Call[Page[LogEntry]]:
    params = _query(
        vendor=filters.vendor,
        type=filters.type,
        since=filters.since,
        until=filters.until,
        cursor=cursor,
        limit=limit,
    )
    return Call("GET", f"{API}/me/access-log", _model(Page[LogEntry]), params=params)


def access_receipt(index: int) -> Call[AuditReceipt]:
    return Call("GET", f"{API}/me/access-log/{index}/receipt", _model(AuditReceipt))


# Export


def export() -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/me/export", _json_object)


def export_schema() -> Call[dict[str, Any]]:
    return Call("GET", f"{API}/export/schema", _json_object)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    value = response.json()
    if not isinstance(value, dict):
        raise VRMError("The server answered something other than a JSON object.")
    return value
