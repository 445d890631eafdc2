"""Logging in without a password on disk: the device authorization grant
(RFC 8628) for the store's own client, ``vrm-me``, and the bearer tokens
it gives.

:func:`start_login` asks the store for a device code and a user code;
the customer opens ``verification_uri`` in a browser, logs in there and
enters the user code; :func:`finish_login` polls the token endpoint at the
interval the store asks for (slower after each ``slow_down``, 3.5) until
they answer. The :class:`Tokens` it returns go to :class:`BearerAuth`, the
``auth=`` of :class:`client.VRMClient`, which sends the access token and
swaps the refresh token for new ones when the access token runs out
(refresh tokens rotate: the store answers each refresh with a new one,
which ``on_refresh`` is handed to save). :func:`revoke` ends the login
(RFC 7009).

A refusal from the authorization server (RFC 6749 5.2's ``error`` and
``error_description``) is a :class:`client.VRMError` whose ``title`` is the
``error``; no token or code is ever in a message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass

import httpx

from client.calls import DEFAULT_TIMEOUT
from client.errors import VRMError, VRMTransportError

CLIENT_ID = "vrm-me"
SCOPE = "account"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Refresh a little before the access token runs out, not after a 401.
EARLY_SECONDS = 30.0


@dataclass(frozen=True)
class DeviceCode:
    """The device authorization response (RFC 8628 3.2)."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: int
    interval: int


@dataclass(frozen=True)
class Tokens:
    """An access token, the refresh token that renews it, and when the
    access token runs out (seconds since the epoch)."""

    access_token: str
    refresh_token: str
    expires_at: float

    @classmethod
    def from_answer(cls, body: dict[str, object], now: float) -> Tokens:
        access, refresh, lasts = (
            body.get("access_token"),
            body.get("refresh_token"),
            body.get("expires_in"),
        )
        if not isinstance(access, str) or not isinstance(refresh, str):
            raise VRMError("The token answer lacks an access or refresh token")
        seconds = float(lasts) if isinstance(lasts, int | float) else 0.0
        return cls(access, refresh, now + seconds)


def oauth_error(response: httpx.Response) -> VRMError:
    """The refusal of an OAuth endpoint (RFC 6749 5.2) as a VRMError."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return VRMError.from_response(response)
    description = body.get("error_description")
    return VRMError(
        body["error"],
        status=response.status_code,
        detail=description if isinstance(description, str) else None,
    )


def _post(http: httpx.Client, path: str, form: dict[str, str]) -> httpx.Response:
    request = http.build_request("POST", path, data=form)
    try:
        return http.send(request)
    except httpx.RequestError as error:
        raise VRMTransportError.wrap("POST", str(request.url), error) from error


def _http(base_url: str, transport: httpx.BaseTransport | None) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=DEFAULT_TIMEOUT, transport=transport)


def start_login(
    base_url: str, *, scope: str = SCOPE, transport: httpx.BaseTransport | None = None
) -> DeviceCode:
    """Ask the store at ``base_url`` for a device code (RFC 8628 3.1)."""
    with _http(base_url, transport) as http:
        r = _post(http, "/oauth/device_authorization", {"client_id": CLIENT_ID, "scope": scope})
    if r.status_code != 200:
        raise oauth_error(r)
    body = r.json()
    try:
        return DeviceCode(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            verification_uri_complete=body.get("verification_uri_complete"),
            expires_in=int(body["expires_in"]),
            interval=int(body.get("interval", 5)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise VRMError(f"The device authorization answer is not RFC 8628's: {error!r}") from None


def finish_login(
    base_url: str,
    code: DeviceCode,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Tokens:
    """Poll the token endpoint (RFC 8628 3.4) until the customer answers:
    the tokens, or a VRMError titled ``access_denied`` or
    ``expired_token`` (or any other refusal)."""
    interval = float(max(code.interval, 1))
    form = {"grant_type": DEVICE_GRANT, "device_code": code.device_code, "client_id": CLIENT_ID}
    with _http(base_url, transport) as http:
        while True:
            sleep(interval)
            r = _post(http, "/oauth/token", form)
            if r.status_code == 200:
                return Tokens.from_answer(r.json(), clock())
            error = oauth_error(r)
            if error.title == "slow_down":
                interval += 5  # RFC 8628 3.5: for this and every later poll
            elif error.title != "authorization_pending":
                raise error


def refresh(
    base_url: str, refresh_token: str, *, transport: httpx.BaseTransport | None = None
) -> Tokens:
    """New tokens for the refresh token (which is spent: keep the new one)."""
    with _http(base_url, transport) as http:
        r = _post(http, "/oauth/token", _refresh_form(refresh_token))
    if r.status_code != 200:
        raise oauth_error(r)
    return Tokens.from_answer(r.json(), time.time())


def revoke(base_url: str, token: str, *, transport: httpx.BaseTransport | None = None) -> None:
    """End the login (RFC 7009): revoking the refresh token ends its access
    tokens too. An unknown token is no error (RFC 7009 2.2)."""
    with _http(base_url, transport) as http:
        r = _post(http, "/oauth/revoke", {"token": token, "client_id": CLIENT_ID})
    if r.status_code != 200:
        raise oauth_error(r)


def _refresh_form(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLIENT_ID}


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer`` on every request, renewed with the refresh
    token at ``token_url`` (the store's ``/oauth/token``) shortly before
    the access token runs out or when the store answers 401 (once per
    request). ``on_refresh`` is handed each new pair,
    to save: the old refresh token no longer works. A refresh the store
    refuses raises :class:`client.VRMError` (``invalid_grant``: log in
    again)."""

    requires_response_body = True

    def __init__(
        self,
        tokens: Tokens,
        *,
        token_url: str,
        on_refresh: Callable[[Tokens], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self.token_url = token_url
        self._on_refresh = on_refresh
        self._clock = clock

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.tokens.expires_at - EARLY_SECONDS <= self._clock():
            yield from self._refresh(request)
        request.headers["Authorization"] = f"Bearer {self.tokens.access_token}"
        response = yield request
        if response.status_code == 401:
            yield from self._refresh(request)
            request.headers["Authorization"] = f"Bearer {self.tokens.access_token}"
            yield request

    def _refresh(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request(
            "POST", self.token_url, data=_refresh_form(self.tokens.refresh_token)
        )
        if response.status_code != 200:
            raise oauth_error(response)
        self.tokens = Tokens.from_answer(response.json(), self._clock())
        if self._on_refresh is not None:
            self._on_refresh(self.tokens)
