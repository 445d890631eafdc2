"""Server-rendered pages (login, consent, errors): no JavaScript, CSRF tokens,
and headers that keep them out of frames and other sites' referrers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from vrm.keys.service import Vault

_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def _origin(uri: str) -> str | None:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def render(
    template: str,
    *,
    status: int = 200,
    form_targets: tuple[str, ...] = (),
    **context: Any,
) -> HTMLResponse:
    """A page with a fresh style nonce and strict headers. ``form_targets``
    are the URIs a form on the page may end up at after redirects (Chrome
    applies form-action to them)."""
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(template).render(nonce=nonce, **context)
    return page(html, nonce, status=status, form_targets=form_targets)


def page(
    html: str,
    nonce: str,
    *,
    status: int = 200,
    form_targets: tuple[str, ...] = (),
    scripts: bool = False,
    images: str = "https:",
) -> HTMLResponse:
    """``html`` under the strict headers every page of this server has: a
    Content-Security-Policy that loads nothing but what carries ``nonce``
    (styles; with ``scripts``, also scripts, which may then fetch from this
    origin only), no framing, no referrer, no caching. ``nonce`` must be
    fresh for each answer (``secrets.token_urlsafe(16)``)."""
    targets = " ".join(sorted({o for o in map(_origin, form_targets) if o}))
    scripting = f"script-src 'nonce-{nonce}'; connect-src 'self'; " if scripts else ""
    csp = (
        "default-src 'none'; "
        f"style-src 'nonce-{nonce}'; "
        f"{scripting}"
        f"img-src {images}; "
        f"form-action 'self' {targets}".rstrip()
        + "; frame-ancestors 'none'; base-uri 'none'"
    )
    return HTMLResponse(
        html,
        status_code=status,
        headers={
            "Content-Security-Policy": csp,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


def csrf_token(vault: Vault, session_token: str, purpose: str) -> str:
    """A token bound to the login session: a cross-site form cannot know it."""
    key = vault.keystore.server_key("csrf")
    mac = hmac.new(key, f"{purpose}\0{session_token}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_ok(vault: Vault, session_token: str, purpose: str, given: str | None) -> bool:
    if not given:
        return False
    return hmac.compare_digest(csrf_token(vault, session_token, purpose).encode(), given.encode())
