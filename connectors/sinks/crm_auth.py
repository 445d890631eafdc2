"""How a hosted CRM's sink proves who it is: a fixed access token, or one it
takes itself with OAuth 2.0 client credentials (RFC 6749 4.4) and takes
again before it expires, or when the CRM refuses it.

A fixed token suits what does not expire: HubSpot's private-app tokens,
BottleCRM's personal access tokens. Salesforce and Dataverse tokens last
hours (a Salesforce session's timeout, an Entra ID token's ``expires_in``):
a connector that follows the feed for days must take new ones. Both CRMs
document the client-credentials grant for server-to-server integrations:

- Salesforce: ``POST https://<my domain>.my.salesforce.com/services/oauth2/token``
  with ``grant_type=client_credentials``, the external client app's
  consumer key and secret; the answer has ``access_token`` and
  ``instance_url`` but no ``expires_in``, so a token is taken again when the
  org answers 401.
- Dataverse: Entra ID's ``POST https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token``
  with ``scope=https://<org>.crm.dynamics.com/.default``; the answer has
  ``expires_in``, and a token is taken again a minute before it ends.

Authlib's httpx client (already the connector's, connectors/store.py) asks
the token endpoint. The secret and every token taken are kept out of error
messages (:meth:`BearerToken.redact`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator

import httpx

from connectors.config import LOOPBACK_HOSTS
from connectors.store import OAuth2Client, OAuthError

# Taken again this long before the token says it ends.
LEEWAY = 60.0


class CrmAuthError(RuntimeError):
    """The CRM's token endpoint refused the client or did not answer (one
    line, never the secret)."""


class BearerToken(httpx.Auth):
    """A fixed access token, sent as ``Authorization: Bearer``."""

    def __init__(self, token: str) -> None:
        self._token: str | None = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def close(self) -> None:
        """Nothing to let go of; a token taken over HTTP has a client."""

    def secrets(self) -> list[str]:
        """What must never appear in a message."""
        return [self._token] if self._token else []

    def redact(self, text: str) -> str:
        """``text`` with every secret this holds replaced by ``[token]``."""
        for secret in sorted(self.secrets(), key=len, reverse=True):
            text = text.replace(secret, "[token]")
        return text


class ClientCredentials(BearerToken):
    """Access tokens taken from ``token_url`` with the client-credentials
    grant (the client's id and secret in the body, as both CRMs document):
    the first before the first request, a new one a minute before the last
    one's ``expires_in`` runs out, and a new one when the CRM answers 401 to
    a token not taken for that very request, which is then sent once more."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        scope: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__("")
        self._token = None
        url = httpx.URL(token_url)
        if url.scheme != "https" and not (url.scheme == "http" and url.host in LOOPBACK_HOSTS):
            raise CrmAuthError("token_url: the client secret goes over https only")
        self.token_url = token_url
        self._secret = client_secret
        self._clock = clock
        self._expires_at: float | None = None
        self._taken: list[str] = []
        self._lock = threading.Lock()
        self._oauth = OAuth2Client(
            client_id=client_id,
            client_secret=client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method's name
            scope=scope,
            timeout=30,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._oauth.close()

    def secrets(self) -> list[str]:
        return [self._secret, *self._taken]

    def check(self) -> None:
        """Take a token now: :class:`CrmAuthError` if the endpoint refuses."""
        self._current()

    def _take(self) -> str:
        try:
            token = self._oauth.fetch_token(self.token_url, grant_type="client_credentials")
        except OAuthError as exc:
            raise CrmAuthError(
                self.redact(f"the CRM's token endpoint refused the client: {exc.error}")
            ) from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise CrmAuthError(f"the CRM's token endpoint answered {status}") from None
        except httpx.TransportError as exc:
            raise CrmAuthError(
                f"the CRM's token endpoint does not answer ({type(exc).__name__})"
            ) from None
        except ValueError:
            raise CrmAuthError("the CRM's token endpoint answered something else") from None
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise CrmAuthError("the CRM's token endpoint gave no access_token")
        expires_in = token.get("expires_in")
        self._expires_at = (
            self._clock() + float(expires_in) if isinstance(expires_in, int | float) else None
        )
        # The last few, for redact(): a message may name the one just refused.
        self._taken = [*self._taken[-7:], access]
        self._token = access
        return access

    def _current(self) -> tuple[str, bool]:
        """The token to send, and whether it was taken just now."""
        with self._lock:
            ending = self._expires_at is not None and self._clock() >= self._expires_at - LEEWAY
            if self._token is None or ending:
                return self._take(), True
            return self._token, False

    def _again(self, refused: str) -> str:
        """A new token after ``refused`` was refused (unless another request
        took one meanwhile)."""
        with self._lock:
            if self._token != refused and self._token is not None:
                return self._token
            return self._take()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token, fresh = self._current()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            request.headers["Authorization"] = f"Bearer {self._again(token)}"
            yield request
