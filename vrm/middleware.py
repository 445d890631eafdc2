"""Pure ASGI middleware: body size limit, JSON-only writes, strict JSON
bodies, and the last word on errors for the lean vendor endpoints.

Each answers with problem details before a handler runs, so an oversized,
non-JSON or unreadable JSON body never reaches a route, let alone the
database.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vrm import strictjson
from vrm.errors import PROBLEM_BASE, PROBLEM_JSON, body_refused, unhandled

_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
_JSON_TYPES = ("application/json", "application/merge-patch+json")


async def _problem(send: Send, status: int, slug: str, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """413 for bodies over ``limit`` bytes, whether announced by
    Content-Length or discovered while streaming a chunked body.

    With ``guard_errors``, also the last word on errors, for ``vrm.app.App``'s
    lean apps and for FastAPI's own stack alike: the error logged once with
    its traceback (``vrm.errors.unhandled``) and answered with a 500 problem
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
        detail = self.detail
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _problem(send, 413, "payload-too-large", "Request body too large", detail)
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
                        await _problem(
                            send, 413, "payload-too-large", "Request body too large", detail
                        )
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
                await _problem(send, 413, "payload-too-large", "Request body too large", detail)
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
                await _problem(
                    send,
                    415,
                    "unsupported-media-type",
                    "Unsupported media type",
                    "Send the body as application/json "
                    "(PATCH also takes application/merge-patch+json).",
                )
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
    refused body gets :func:`vrm.errors.body_refused`'s answer; an accepted
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
