"""``VRMClient``: the customer API from blocking code."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx

from client import calls
from client.calls import DEFAULT_TIMEOUT, AccessLogFilter, Call, HistoryFilter, Progress
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
)

T = TypeVar("T")


class VRMClient:
    """The customer's side of a store at ``base_url``.

    Log in with :meth:`log_in`: the session cookie stays in this client
    until :meth:`log_out` or :meth:`close`. Or log in with the device flow
    (client/device.py) and pass ``auth=BearerAuth(tokens, ...)``: httpx
    hands it every request, and it sends the access token and renews it.
    ``transport`` replaces httpx's network
    transport (``httpx.MockTransport`` in tests). Every failure raises
    :class:`client.VRMError`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, transport=transport, auth=auth
        )

    def __enter__(self) -> VRMClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections; the server-side session stays open."""
        self._http.close()

    def _send(self, call: Call[T]) -> T:
        request = call.request(self._http)
        try:
            response = self._http.send(request)
        except httpx.RequestError as error:
            raise call.failed(request, error) from error
        return call.answer(response)

    def _walk(self, page: Callable[[str | None], Call[Page[T]]]) -> Iterator[T]:
        cursor: str | None = None
        while True:
            current = self._send(page(cursor))
            yield from current.items
            if current.next_cursor is None:
                return
            cursor = current.next_cursor

    # Account and session

    def sign_up(self, email: str, password: str) -> NewAccount:
        """Create an account (409 if the email is taken). Does not log in.
        Keep its ``recovery_key``: it is shown only here."""
        return self._send(calls.sign_up(email, password))

    def recover(self, email: str, recovery_key: str, new_password: str) -> str:
        """A forgotten password: set ``new_password`` with the recovery key.
        Every session ends; log in afterwards. Returns the new recovery key
        (the one used no longer works)."""
        return self._send(calls.recover(email, recovery_key, new_password))

    def log_in(self, email: str, password: str) -> LoggedIn:
        """Open a session; its cookie is kept for every later call."""
        return self._send(calls.log_in(email, password))

    def log_out(self) -> None:
        """End this session on the server and forget its cookie."""
        try:
            self._send(calls.log_out())
        finally:
            self._http.cookies.clear()

    def me(self) -> Account:
        """The logged-in account."""
        return self._send(calls.me())

    def change_password(self, current_password: str, new_password: str) -> None:
        """Change the password: every other session ends, this one goes on."""
        self._send(calls.change_password(current_password, new_password))

    def delete_account(self, password: str) -> None:
        """Erase the account and all its data for good (crypto-shredding)."""
        self._send(calls.delete_account(password))
        self._http.cookies.clear()

    def sessions(self) -> list[LoginSession]:
        """Your live sessions, most recently used first."""
        return self._send(calls.sessions())

    def end_session(self, session_id: str) -> None:
        """End one of your sessions at once (this one: logged out)."""
        self._send(calls.end_session(session_id))

    # Profile and preferences

    def profile(self) -> Profile:
        """Your profile, with its ``etag``."""
        return self._send(calls.read_profile())

    def replace_profile(self, profile: Profile, *, if_match: str | None = None) -> Profile:
        """Replace the whole profile; members left out become empty. With
        ``if_match`` (an ``etag``), a profile changed since is not overwritten (412)."""
        return self._send(calls.replace_profile(profile, if_match))

    def patch_profile(self, patch: Mapping[str, Any], *, if_match: str | None = None) -> Profile:
        """Change part of the profile (JSON merge patch: None removes a member)."""
        return self._send(calls.patch_profile(patch, if_match))

    def preferences(self) -> Preferences:
        """Your preferences, with their ``etag``."""
        return self._send(calls.read_preferences())

    def replace_preferences(
        self, preferences: Preferences, *, if_match: str | None = None
    ) -> Preferences:
        """Replace all preferences; members left out become empty."""
        return self._send(calls.replace_preferences(preferences, if_match))

    def patch_preferences(
        self, patch: Mapping[str, Any], *, if_match: str | None = None
    ) -> Preferences:
        """Change part of the preferences (JSON merge patch: None removes a member)."""
        return self._send(calls.patch_preferences(patch, if_match))

    # History

    def history(
        self,
        *,
        vendor: str | None = None,
        type: EventType | None = None,
        label: Label | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Event]:
        """Every event that matches, newest first, fetched a page at a time
        as the iteration goes (``page_size`` 1 to 200; the server's default is 50)."""
        filters = HistoryFilter(vendor=vendor, type=type, label=label, since=since, until=until)
        return self._walk(lambda cursor: calls.history_page(filters, cursor, page_size))

    def history_page(
        self,
        *,
        filters: HistoryFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Event]:
        """One page of history; pass its ``next_cursor`` back as ``cursor``."""
        return self._send(calls.history_page(filters or HistoryFilter(), cursor, limit))

    def add_event(self, event: NewEvent) -> Event:
        """Add an event to your history."""
        return self._send(calls.add_event(event))

    def event(self, event_id: str) -> Event:
        """One event, with its ``etag``."""
        return self._send(calls.read_event(event_id))

    def patch_event(
        self, event_id: str, patch: Mapping[str, Any], *, if_match: str | None = None
    ) -> Event:
        """Change an event with a JSON merge patch (its ``source`` cannot change)."""
        return self._send(calls.patch_event(event_id, patch, if_match))

    def label_event(
        self, event_id: str, labels: list[Label], *, if_match: str | None = None
    ) -> Event:
        """Set the event's labels (``gift``, ``not_for_me``, ``private``), replacing its own."""
        return self._send(calls.patch_event(event_id, {"labels": labels}, if_match))

    def delete_event(self, event_id: str) -> None:
        """Delete an event."""
        self._send(calls.delete_event(event_id))

    # Grants

    def grants(self) -> list[Grant]:
        """Every grant you gave, newest first, active or not."""
        return self._send(calls.grants())

    def grant(self, grant_id: str) -> Grant:
        """One grant, with every change since it was given."""
        return self._send(calls.read_grant(grant_id))

    def narrow_grant(self, grant_id: str, scopes: list[str]) -> Grant:
        """Keep only ``scopes`` (a subset of the grant's) from now on."""
        return self._send(calls.change_grant(grant_id, scopes, None))

    def shorten_grant(self, grant_id: str, expires_at: datetime) -> Grant:
        """Bring the grant's expiry closer (a later one is refused, 422)."""
        return self._send(calls.change_grant(grant_id, None, expires_at))

    def revoke_grant(self, grant_id: str) -> None:
        """Withdraw consent: every token of the grant stops working at once."""
        self._send(calls.revoke_grant(grant_id))

    def grant_receipt(self, grant_id: str) -> str:
        """The signed consent record: a compact JWS (ES256, key at /oauth/jwks)."""
        return self._send(calls.grant_receipt(grant_id))

    # Access log

    def access_log(
        self,
        *,
        vendor: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[LogEntry]:
        """Every log entry about you that matches, newest first, a page at a
        time as the iteration goes (``page_size`` 1 to 500; default 50)."""
        filters = AccessLogFilter(vendor=vendor, type=type, since=since, until=until)
        return self._walk(lambda cursor: calls.access_log_page(filters, cursor, page_size))

    def access_log_page(
        self,
        *,
        filters: AccessLogFilter | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[LogEntry]:
        """One page of the access log; pass its ``next_cursor`` back as ``cursor``."""
        return self._send(calls.access_log_page(filters or AccessLogFilter(), cursor, limit))

    def access_receipt(self, index: int) -> AuditReceipt:
        """Entry ``index`` with the proof a signed checkpoint covers it
        (409 until the next checkpoint is signed)."""
        return self._send(calls.access_receipt(index))

    # Export

    def export(self, *, on_progress: Progress | None = None) -> dict[str, Any]:
        """Everything the store holds about you, as one JSON document
        (schema: :meth:`export_schema`). ``on_progress(received, total)``
        is called as the answer arrives (``total``: None if unknown)."""
        call = calls.export()
        if on_progress is None:
            return self._send(call)
        request = call.request(self._http)
        chunks: list[bytes] = []
        try:
            response = self._http.send(request, stream=True)
            try:
                total = calls.length_of(response)
                received = 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    received += len(chunk)
                    # Bytes as sent (what Content-Length counts) when the
                    # transport counts them, else as decoded.
                    on_progress(response.num_bytes_downloaded or received, total)
            finally:
                response.close()
        except httpx.RequestError as error:
            raise call.failed(request, error) from error
        return call.answer(calls.whole(response, b"".join(chunks)))

    def export_schema(self) -> dict[str, Any]:
        """The export's JSON Schema (draft 2020-12); needs no session."""
        return self._send(calls.export_schema())
