"""Server-rendered pages (login, consent, errors): no JavaScript, CSRF tokens,
and headers that keep them out of frames and other sites' referrers.

Their forms are read through :func:`form_fields` and :func:`form_list`
only: a file where text belongs, a field sent twice or an overlong value is
a :class:`FormError`, which the page answers with 400 and the form again,
never a 500."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, Response

from vrm.deps import secure_cookies
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


@dataclass(frozen=True)
class DoubleSubmit:
    """The CSRF token of a form shown before there is a session (log-in,
    sign-up): one random value in the form and in a cookie of its own
    (HttpOnly, SameSite=Strict, sent back to the form's path only). A site
    that cannot read the cookie cannot put its value in a form."""

    cookie: str
    path: str

    def token(self, request: Request) -> str:
        """The browser's token, or a new one."""
        return request.cookies.get(self.cookie) or secrets.token_urlsafe(32)

    def give(self, response: Response, request: Request, token: str) -> None:
        response.set_cookie(
            self.cookie,
            token,
            httponly=True,
            samesite="strict",
            secure=secure_cookies(request),
            path=self.path,
        )

    def ok(self, request: Request, given: str) -> bool:
        """The form's token is the cookie's (compared in constant time)."""
        held = request.cookies.get(self.cookie, "")
        return bool(held) and hmac.compare_digest(held.encode(), given.encode())

    def forget(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.path)


class FormError(ValueError):
    """A form that no page of ours sends. The message names fields and
    limits, never a value (one may be a password); ``kept`` holds the
    fields that were fine, to fill the form in again."""

    def __init__(self, message: str, kept: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kept = kept or {}


async def page_form(request: Request) -> AsyncIterator[FormData]:
    """The submitted form; uploaded files are closed after the answer."""
    async with request.form() as form:
        yield form


PageFormDep = Annotated[FormData, Depends(page_form)]


def form_fields(form: FormData, limits: dict[str, int]) -> dict[str, str]:
    """The one text value of each field named in ``limits`` (at most that
    many characters; ``""`` when absent). Fields not named are ignored."""
    kept: dict[str, str] = {}
    problems: list[str] = []
    for name, limit in limits.items():
        values = form.getlist(name)
        value = values[0] if values else ""
        if len(values) > 1:
            problems.append(f"{name} was sent more than once")
        elif not isinstance(value, str):
            problems.append(f"{name} must be text, not a file")
        elif len(value) > limit:
            problems.append(f"{name} is longer than {limit} characters")
        else:
            kept[name] = value
    if problems:
        raise FormError("; ".join(problems), kept)
    return kept


def form_list(form: FormData, name: str, *, max_items: int, max_length: int) -> list[str]:
    """Every text value of a repeatable field (ticked checkboxes)."""
    values = form.getlist(name)
    if len(values) > max_items:
        raise FormError(f"{name} was sent more than {max_items} times")
    if not all(isinstance(v, str) for v in values):
        raise FormError(f"{name} must be text, not a file")
    if any(len(str(v)) > max_length for v in values):
        raise FormError(f"{name} is longer than {max_length} characters")
    return [str(v) for v in values]
