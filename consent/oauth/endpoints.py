"""The vendor-facing hot paths: token, revocation and introspection.

Vendors call these far more often than anything else, so they are one small
ASGI app rather than FastAPI routes: no dependency solving, no route search,
no Starlette ``Request``, and the form parsed straight from the body. The
app (``vendor_endpoint``) answers a POST to one of them ahead of FastAPI's
middleware and routing, inside the body limit, which also answers its
unexpected errors (``vrm.app.App``); the same table (vrm/lean.py) makes it
the routes of these paths, which answer 405 to the other methods.

The work runs in the app's group commit (vrm/storage/groupcommit.py): the requests
answered meanwhile run in one transaction, each in a savepoint of its own,
and each answer waits for that commit. On SQLite that is two turns of the
event loop after the group's first request, in the loop itself (short CPU
work, cheaper than a hop to a thread, and one process never runs two at
once, so they never wait on each other's locks;
docs/performance.md#the-lean-vendor-paths); on PostgreSQL in the group's
own thread, so that the loop serves other requests while the work waits for
the database, and one thread rather than one per request (a threadpool of
eight busy threads cost more CPU in the handing over of the GIL than the
requests themselves).

Protocol errors keep the RFC 6749 shape Authlib produces; every answer
carries ``Cache-Control: no-store`` (RFC 6749 5.1).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from consent.oauth import store
from consent.oauth.answers import JSONAnswer
from consent.oauth.errors import quoted
from consent.oauth.requests import Request as OAuthRequest
from consent.oauth.server import Server
from vrm.storage import groupcommit
from vrm.storage.transaction import Transaction

# Path -> Authlib endpoint name (None: the token endpoint).
PATHS: dict[str, str | None] = {
    "/oauth/token": None,
    "/oauth/revoke": "revocation",
    "/oauth/introspect": "introspection",
    # RFC 8628 3.1, for the store's own client (grants/device_code.py).
    "/oauth/device_authorization": "device_authorization",
}
FORM = "application/x-www-form-urlencoded"
# As Starlette's form parser: more fields than this is not a token request.
MAX_FIELDS = 1000


def _invalid_request(description: str) -> Response:
    return JSONAnswer({"error": "invalid_request", "error_description": description}, 400)


def _no_store(response: Response) -> Response:
    if not isinstance(response, JSONAnswer):  # which says so already
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    return response


def _media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";")[0].strip().lower()


def _request(scope: Scope, headers: Headers, issuer: str, body: bytes) -> OAuthRequest | Response:
    """The OAuth request, its parameters from the form body only (never the
    query: RFC 6749 3.2, OAuth 2.1)."""
    if _media_type(headers) != FORM:
        return _invalid_request("send the parameters as application/x-www-form-urlencoded")
    try:
        # Decoded as Starlette's form parser does: %-escapes as UTF-8.
        items = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return _invalid_request("too many parameters")
    # The URL as the issuer names it (behind a proxy, the public https URL,
    # which Authlib insists on).
    uri = issuer.rstrip("/") + scope["path"]
    if query := scope.get("query_string", b""):
        uri += "?" + query.decode("latin-1")
    oreq = OAuthRequest("POST", uri, headers, items)
    if oreq.payload.repeated is not None:
        # Refused before any parameter is acted on (RFC 6749 3.1, 3.2), so
        # a code or refresh token sent with a repeat is not spent.
        return _invalid_request(
            f"{quoted(oreq.payload.repeated)} is sent more than once (RFC 6749 3.1)"
        )
    return oreq


def _answer(server: Server, name: str | None, oreq: OAuthRequest) -> Response:
    if name is None:
        return server.create_token_response(oreq)  # type: ignore[no-any-return]
    return server.create_endpoint_response(name, oreq)  # type: ignore[no-any-return]


async def _grouped(state: Any, name: str | None, oreq: OAuthRequest) -> Response:
    """The request runs in the app's group commit (vrm/storage/groupcommit.py), with
    the others answered meanwhile, and its answer waits for their commit."""
    server: Server = state.oauth

    def work(tx: Transaction) -> Response:
        oreq.tx = tx
        return _answer(server, name, oreq)

    return await groupcommit.of(state).run(store.ENDPOINT_WRITES, work)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None if the client went away."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


class VendorEndpoint:
    """ASGI app for POST /oauth/token, /oauth/revoke and /oauth/introspect
    (a class, so that Starlette's ``Route`` takes it as an ASGI app). The
    server and engine are the app's, from ``scope["app"].state``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["app"].state
        server: Server = state.oauth
        body = await _read_body(receive)
        if body is None:
            return
        headers = Headers(scope=scope)
        oreq = _request(scope, headers, server.settings.issuer, body)
        if isinstance(oreq, Response):
            response = oreq
        else:
            response = await _grouped(state, PATHS[scope["path"]], oreq)
        await _no_store(response)(scope, receive, send)


vendor_endpoint = VendorEndpoint()
