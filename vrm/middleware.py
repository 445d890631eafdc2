"""Pure ASGI middleware: body size limit, JSON-only writes, and the last
word on errors for the lean vendor endpoints.

Both answer with problem details before a handler runs, so an oversized
or non-JSON body never reaches parsing, let alone the database.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vrm.errors import PROBLEM_BASE, PROBLEM_JSON, unhandled

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

    With ``guard_errors``, also the last word on errors, for the apps that
    run outside FastAPI's stack (``vrm.app.App``'s lean apps): what
    FastAPI's handler for ``Exception`` does (vrm/errors.py), the error
    logged with its traceback and answered with a 500 problem if no answer
    has started. (One layer, not two: each wraps the app's send and receive
    on every request.)"""

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
            media = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1")
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
