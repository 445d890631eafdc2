"""``vrm-connector authorize``: one customer's consent, by the
authorization code flow with PKCE (S256), through Authlib's httpx client.

The connector prints the authorization URL (and opens it when asked); the
customer consents in their browser; the store redirects to the vendor's
registered ``redirect_uri``. If that is a loopback address, the connector
listens there for that one request; otherwise (``--paste``) the operator
pastes the address the browser was sent to. The code is exchanged, the
customer's pairwise subject read from introspection, and the tokens kept
in the encrypted token store (connectors/tokens.py).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.config import LOOPBACK_HOSTS
from connectors.store import OAuth2Client, OAuthError, Store, StoreError
from connectors.tokens import Held

PAGE = b"""<!doctype html><meta charset="utf-8"><title>Done</title>
<p>The connector has the answer. You can close this window.</p>"""


class AuthorizeError(RuntimeError):
    """The authorization did not complete (one line)."""


def wait_for_callback(redirect_uri: str, timeout: float) -> str:
    """Serve the loopback ``redirect_uri`` for one request (its path only)
    and return the full address the browser was sent to."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or parts.port is None:
        raise AuthorizeError("redirect_uri is not a loopback address with a port: use --paste")
    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path != parts.path:
                self.send_error(404)
                return
            got.append(f"{parts.scheme}://{parts.netloc}{self.path}")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer((parts.hostname or "127.0.0.1", parts.port), Handler)
    server.timeout = 0.5
    deadline = time.monotonic() + timeout
    try:
        while not got and time.monotonic() < deadline:
            server.handle_request()
    finally:
        server.server_close()
    if not got:
        raise AuthorizeError(f"no answer at {redirect_uri} within {timeout:.0f} s")
    return got[0]


def authorize(
    store: Store,
    client_secret: str,
    *,
    redirect_uri: str,
    scope: str,
    purpose: str,
    receive: Callable[[], str],
    show: Callable[[str], None],
) -> Held:
    """Run the flow: ``show`` the URL, ``receive`` the address the browser
    was sent to, exchange the code; the customer's tokens."""
    metadata = store.metadata()
    verifier = secrets.token_urlsafe(48)
    client = OAuth2Client(
        client_id=store.client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method's name
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge_method="S256",
        timeout=30,
        follow_redirects=False,
    )
    try:
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, purpose=purpose
        )
        show(url)
        answer = receive()
        query = parse_qs(urlsplit(answer).query)
        if "error" in query:
            raise AuthorizeError(f"the customer's answer: {query['error'][0]}")
        issuer = query.get("iss", [None])[0]
        if issuer is not None and issuer != store.issuer:
            # RFC 9207: an answer from another server (a mix-up attack).
            raise AuthorizeError("the answer names another issuer")
        if query.get("state", [None])[0] != state:
            raise AuthorizeError("the answer's state is not this authorization's")
        try:
            token = client.fetch_token(
                metadata["token_endpoint"], authorization_response=answer, code_verifier=verifier
            )
        except OAuthError as exc:
            raise AuthorizeError(f"the store refused the code: {exc.error}") from None
    finally:
        client.close()
    subject = _subject(store, client_secret, metadata, str(token["access_token"]))
    return Held(
        subject=subject,
        grant_id=str(token.get("grant_id", "")),
        scope=str(token.get("scope", scope)),
        access_token=str(token["access_token"]),
        refresh_token=token.get("refresh_token"),
        expires_at=float(token.get("expires_at") or time.time() + int(token["expires_in"])),
    )


def _subject(store: Store, secret: str, metadata: dict[str, Any], access_token: str) -> str:
    endpoint = metadata.get("introspection_endpoint")
    if not endpoint:
        raise StoreError("the store publishes no introspection endpoint")
    r = httpx.post(
        endpoint, data={"token": access_token}, auth=(store.client_id, secret), timeout=30
    )
    found = r.json() if r.status_code == 200 else {}
    if not found.get("active") or not found.get("sub"):
        raise AuthorizeError("the store does not vouch for the new token")
    return str(found["sub"])


def open_in_browser(url: str) -> None:
    import webbrowser

    threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
