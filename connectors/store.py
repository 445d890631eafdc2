"""The store's HTTP API, as the connector uses it: discovery, the JWKS
that signs its notices, and client-credentials tokens (Authlib's httpx
OAuth client) for the vendor-wide feed.

Requests that meet 429 or a 5xx, or no answer, are tried again with
exponential backoff and jitter, waiting at least what ``Retry-After``
says, up to :data:`ATTEMPTS` times.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning
from joserfc.jwk import KeySet

from connectors.tokens import Held

with warnings.catch_warnings():
    # Authlib 1.9 warns, on import, that its httpx client prefers httpx2;
    # httpx is what the rest of the project uses. (Importing
    # authlib.deprecate first: it adds an "always" filter of its own.)
    warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning, message=".*httpx2")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

# Authlib's client, imported once here (connectors/authorize.py uses it too).
__all__ = ["OAuth2Client", "OAuthError", "Store", "StoreError", "with_retries"]

ATTEMPTS = 6
FIRST_WAIT = 0.5
LONGEST_WAIT = 30.0
RETRIED = frozenset({429, 500, 502, 503, 504})


class StoreError(RuntimeError):
    """The store could not be used (one line, never a secret)."""


def _wait(attempt: int, retry_after: str | None) -> float:
    wait: float = min(FIRST_WAIT * 2**attempt, LONGEST_WAIT) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
    if retry_after is not None and retry_after.strip().isdigit():
        wait = max(wait, min(float(retry_after), LONGEST_WAIT * 4))
    return wait


def with_retries(
    send: Callable[[], httpx.Response],
    sleep: Callable[[float], None] = time.sleep,
    *,
    also: Callable[[httpx.Response], bool] | None = None,
) -> httpx.Response:
    """``send()`` until it is answered with neither 429 nor a 5xx, nor an
    answer ``also`` says is worth trying again (a peer's own way of saying
    "too many requests", such as Salesforce's 403 REQUEST_LIMIT_EXCEEDED)."""
    for attempt in range(ATTEMPTS):
        try:
            response = send()
        except httpx.TransportError as exc:
            if attempt == ATTEMPTS - 1:
                raise StoreError(f"the store does not answer ({type(exc).__name__})") from None
            sleep(_wait(attempt, None))
            continue
        retried = response.status_code in RETRIED or (also is not None and also(response))
        if not retried or attempt == ATTEMPTS - 1:
            return response
        sleep(_wait(attempt, response.headers.get("retry-after")))
    raise AssertionError("unreachable")


class Store:
    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id
        self._secret = client_secret
        self._transport = transport
        self._sleep = sleep
        self.http = httpx.Client(timeout=30, transport=transport, follow_redirects=False)
        self._oauth = OAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method's name
            scope="feed:read",
            timeout=30,
            transport=transport,
            follow_redirects=False,
        )
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()
        self._oauth.close()

    def metadata(self) -> dict[str, Any]:
        """The authorization server's metadata (RFC 8414)."""
        if self._metadata is None:
            r = with_retries(
                lambda: self.http.get(f"{self.url}/.well-known/oauth-authorization-server"),
                self._sleep,
            )
            if r.status_code != 200:
                raise StoreError(f"the store's metadata answered {r.status_code}")
            found = r.json()
            if not isinstance(found, dict) or "issuer" not in found:
                raise StoreError("the store's metadata is not an authorization server's")
            self._metadata = found
        return self._metadata

    @property
    def issuer(self) -> str:
        return str(self.metadata()["issuer"])

    def keys(self, refresh: bool = False) -> KeySet:
        """The store's JWKS, fetched again when ``refresh``."""
        with self._lock:
            if self._keys is None or refresh:
                uri = self.metadata().get("jwks_uri") or f"{self.url}/oauth/jwks"
                r = with_retries(lambda: self.http.get(uri), self._sleep)
                if r.status_code != 200:
                    raise StoreError(f"the store's JWKS answered {r.status_code}")
                self._keys = KeySet.import_key_set(r.json())
            return self._keys

    def fetch_token(self) -> None:
        """A client-credentials token for the feed; :class:`StoreError`
        if the store refuses the client."""
        endpoint = self.metadata()["token_endpoint"]
        try:
            self._oauth.fetch_token(endpoint, grant_type="client_credentials")
        except OAuthError as exc:
            raise StoreError(f"the store refused the client: {exc.error}") from None
        except httpx.TransportError as exc:
            raise StoreError(f"the store does not answer ({type(exc).__name__})") from None

    def customer_data(self, held: Held) -> dict[str, Any] | None:
        """``GET /v1/data`` with one customer's token, refreshing it (in
        ``held``) when it has expired or is refused; None once the grant
        has ended (the refresh token is refused too)."""
        if held.expires_at < time.time() + 30 and not self._refresh(held):
            return None
        for attempt in range(2):
            r = with_retries(lambda: self._read_data(held.access_token), self._sleep)
            if r.status_code == 401 and attempt == 0:
                if not self._refresh(held):
                    return None
                continue
            if r.status_code == 401:
                return None
            if r.status_code != 200:
                raise StoreError(f"a customer's data answered {r.status_code}")
            body: dict[str, Any] = r.json()
            return body
        return None

    def _read_data(self, access_token: str) -> httpx.Response:
        return self.http.get(
            f"{self.url}/v1/data", headers={"Authorization": f"Bearer {access_token}"}
        )

    def _refresh(self, held: Held) -> bool:
        if not held.refresh_token:
            return False
        client = OAuth2Client(
            client_id=self.client_id,
            client_secret=self._secret,
            token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method's name
            timeout=30,
            transport=self._transport,
            follow_redirects=False,
        )
        try:
            token = client.refresh_token(
                self.metadata()["token_endpoint"], refresh_token=held.refresh_token
            )
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                return False
            raise StoreError(f"the store refused a refresh: {exc.error}") from None
        finally:
            client.close()
        held.access_token = str(token["access_token"])
        held.refresh_token = token.get("refresh_token") or held.refresh_token
        held.expires_at = float(token.get("expires_at") or time.time() + int(token["expires_in"]))
        return True

    def get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        """``GET path`` with the feed token, fetched (again) as needed."""
        if not self._oauth.token:
            self.fetch_token()
        response = with_retries(
            lambda: self._oauth.get(f"{self.url}{path}", params=params), self._sleep
        )
        if response.status_code == 401:
            self.fetch_token()
            response = with_retries(
                lambda: self._oauth.get(f"{self.url}{path}", params=params), self._sleep
            )
        return response
