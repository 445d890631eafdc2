"""The headers every answer carries, and the one place they are added.

``vrm.app.App.__call__`` wraps the ``send`` of every HTTP request with
:func:`adding`, before it chooses between the routed app and the lean vendor
endpoints (consent/oauth/endpoints.py, vrm/vendor_api/reads.py). So the rule
reaches every answer: routed ones, problem details from any handler, the
500 of Starlette's ``ServerErrorMiddleware`` (which sits outside the
middleware stack), the body limit's 413 and the lean endpoints, which skip
FastAPI's middleware altogether.

- ``X-Content-Type-Options: nosniff`` on every answer: a browser must never
  read a JSON answer holding customer-supplied strings as HTML or script.
- ``Cache-Control: no-store`` on every answer under :data:`PRIVATE_PREFIXES`
  that does not say otherwise: what those paths answer is personal (a
  customer's data, a session, a grant, a token), and no cache, shared or
  the browser's, may keep it (RFC 9111 5.2.2.5). A route opts out by
  setting its own ``Cache-Control``, and says there why caching is safe
  (the vendor read's ``private, no-cache``: vrm/vendor_api/reads.py).

The headers are bytes made once, at import: the lean endpoints answer so
fast that building them per request would show, and this adds a list
concatenation to each (docs/performance.md#the-lean-vendor-paths).
"""

from __future__ import annotations

from starlette.types import Message, Send

# Every path that answers with personal data or credentials: the customer
# API, the vendor data API and the authorization server's endpoints.
PRIVATE_PREFIXES = ("/api/", "/v1/", "/oauth/")

NOSNIFF = (b"x-content-type-options", b"nosniff")
NO_STORE = (b"cache-control", b"no-store")

# The security headers of an answer, by whether its path is private.
EVERY_ANSWER: tuple[tuple[bytes, bytes], ...] = (NOSNIFF,)
PRIVATE_ANSWER: tuple[tuple[bytes, bytes], ...] = (NOSNIFF, NO_STORE)


def security_headers(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers an answer to ``path`` carries unless it sets them itself."""
    return PRIVATE_ANSWER if path.startswith(PRIVATE_PREFIXES) else EVERY_ANSWER


def adding(path: str, send: Send) -> Send:
    """``send``, with the security headers for ``path`` added to the start
    of the answer where the answer has not set them itself (header names
    are lower case in ASGI messages from Starlette and from the lean apps)."""
    extra = security_headers(path)

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            # A copy: a response may hand the same list to every answer.
            headers = list(message.get("headers", ()))
            present = dict(headers)
            for header in extra:
                if header[0] not in present:
                    headers.append(header)
            message["headers"] = headers
        await send(message)

    return send_with_headers
