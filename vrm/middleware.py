"""Pure ASGI middleware: body size limit, JSON-only writes, strict JSON
bodies, and the last word on errors for the lean vendor endpoints.

Each answers with problem details before a handler runs, so an oversized,
non-JSON or unreadable JSON body never reaches a route, let alone the
database.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vrm import strictjson
from vrm.errors import (
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    VRMError,
)
from vrm.problems import body_refused, problem_for, unhandled

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_JSON_TYPES = ("application/json", "application/merge-patch+json")


async def _refuse(scope: Scope, receive: Receive, send: Send, error: VRMError) -> None:
    """Answer ``error`` before the body is read: the connection closes, for
    what is left of the body would otherwise be read as the next request."""
    response = problem_for(error, scope["method"], scope["path"])
    response.headers["Connection"] = "close"
    await response(scope, receive, send)


_NUL_IN_QUERY = "a query cannot hold a NUL character"


def _nul(scope: Scope) -> VRMError | None:
    """A NUL in the path or the query names nothing this server holds, and
    PostgreSQL text cannot hold one (psycopg refuses the statement, a 500):
    refused here, in front of every route, lean or not, so that no path or
    query parameter can carry one to the database. The path as 404 (no
    such resource), the query as any query that fails its schema (422)
    where answers are problem details; the OAuth endpoints answer in their
    own format (RFC 6749 4.1.2.1, 5.2), and check their parameters before
    any lookup."""
    if "\x00" in scope["path"]:
        return NotFound()
    if b"%00" in scope.get("query_string", b"") and scope["path"].startswith(_PROBLEM_PATHS):
        errors = [{"field": "query", "message": _NUL_IN_QUERY, "code": "nul"}]
        return ValidationFailed(f"query: {_NUL_IN_QUERY}", errors=errors)
    return None


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes, whether announced by
    Content-Length or discovered while streaming a chunked body.

    With ``guard_errors``, also the last word on errors, for ``vrm.app.App``'s
    lean apps and for FastAPI's own stack alike: the error logged once with
    its traceback (``vrm.problems.unhandled``) and answered with a 500 problem
    if no answer has started, and never raised on to the server, which would
    log it again and close the keep-alive connection. (One layer, not two:
    each wraps the app's send and receive on every request.)"""

    def __init__(self, app: ASGIApp, *, limit: int, guard_errors: bool = False) -> None:
        self.app = app
        self.limit = limit
        self.guard_errors = guard_errors
        self.detail = f"Request bodies are limited to {limit} bytes."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = _nul(scope)
        if refused is not None:
            await _refuse(scope, receive, send, refused)
            return
        detail = self.detail
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _refuse(scope, receive, send, PayloadTooLarge(detail))
            return
        seen = 0
        started = False
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, started, answered
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Answer now: FastAPI turns an error raised while it reads
                    # the body into its own 400, so _TooLarge may never get
                    # back to the except clause below.
                    if not started:
                        started = answered = True
                        await _refuse(scope, receive, send, PayloadTooLarge(detail))
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 is out; drop whatever the app makes of the error
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(scope, receive, send, PayloadTooLarge(detail))
        except Exception as exc:
            if not self.guard_errors:
                raise
            response = unhandled(scope["method"], scope["path"], exc)
            if not started:
                await response(scope, receive, send)


def json_only(method: str, path: str) -> bool:
    """Whether a request with a body must send it as JSON (415 if not)."""
    return method in _WRITE_METHODS and path.startswith("/api/")


class JSONOnlyMiddleware:
    """Writes under /api/ must send JSON. Besides clear errors, this is a
    CSRF defence: a cross-site form cannot send application/json without a
    CORS preflight, which this server does not grant."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and json_only(scope["method"], scope["path"]):
            headers = dict(scope["headers"])
            has_body = headers.get(b"content-length", b"0") not in (b"0", b"") or (
                b"transfer-encoding" in headers
            )
            # The first Content-Type, the one FastAPI reads.
            media = (Headers(scope=scope).get("content-type") or "").split(";")[0].strip()
            if has_body and media.lower() not in _JSON_TYPES:
                refused = UnsupportedMediaType(
                    "Send the body as application/json "
                    "(PATCH also takes application/merge-patch+json)."
                )
                await _refuse(scope, receive, send, refused)
                return
        await self.app(scope, receive, send)


# Where answers are problem details. The OAuth endpoints keep the RFC 6749
# and RFC 7591 error format and parse their own bodies with vrm.strictjson
# (consent/registration/).
_PROBLEM_PATHS = ("/api/", "/v1/")


class StrictJSONMiddleware:
    """Every JSON body under /api/ and /v1/ goes through
    :func:`vrm.strictjson.loads_body` before a route sees it.

    FastAPI reads a body with Python's ``json.loads``, which takes NaN,
    Infinity and ``1e999`` (stored as null, then unreadable) and raises
    errors other than JSONDecodeError on bad encodings and deep nesting
    (answered 400 ``about:blank``). Here, in front of every route, a
    refused body gets :func:`vrm.problems.body_refused`'s answer; an accepted
    one is passed on byte for byte, which FastAPI then parses again: the
    bytes are UTF-8 JSON without NaN or overlong numbers, which
    ``json.loads`` reads to the same value (a second parse costs less than
    replacing FastAPI's body reading on every route).

    The lean vendor apps (``vrm.app.App.__call__``) skip this stack; they
    take only forms and GETs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_PROBLEM_PATHS):
            await self.app(scope, receive, send)
            return
        # The first Content-Type, as FastAPI reads it: a second one must not
        # let a body past this check that FastAPI then parses as JSON.
        content_type = Headers(scope=scope).get("content-type")
        if not strictjson.is_json_media(content_type):
            await self.app(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left; nobody to answer
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            try:
                strictjson.loads_body(body, content_type)
            except strictjson.Rejected as exc:
                await body_refused(exc, scope["path"])(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
