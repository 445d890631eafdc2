"""Rendering the customer's pages: one Jinja environment over these
templates and consent's (whose ``base.html`` holds the one stylesheet of
every page), and the navigation the layout shows."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from consent.pages import page

_env = Environment(
    # Ours first, then consent's: base.html, the login page's look.
    loader=ChoiceLoader([PackageLoader("client.web"), PackageLoader("consent")]),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)


def _utc(moment: datetime) -> str:
    """A time as the pages show it: in UTC, as the event form asks for it."""
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


_env.filters["utc"] = _utc


@dataclass(frozen=True)
class NavEntry:
    path: str
    words: str


# What a logged-in customer can reach from every page. A new page (the
# connected vendors, the access history) adds its entry here.
NAV = (
    NavEntry("/", "Home"),
    NavEntry("/data/profile", "Profile"),
    NavEntry("/data/preferences", "Preferences"),
    NavEntry("/data/history", "History"),
    NavEntry("/vendors", "Vendors"),
    NavEntry("/access", "Access history"),
    NavEntry("/account/password", "Password"),
    NavEntry("/account/export", "Export"),
    NavEntry("/account/delete", "Delete account"),
)


def render(
    template: str,
    *,
    path: str,
    logout_csrf: str | None = None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """``template`` under consent's strict page headers. ``path`` marks the
    current navigation entry; ``logout_csrf``, the log-out button's token,
    is given on the pages of a logged-in customer, who then sees the
    navigation."""
    nonce = secrets.token_urlsafe(16)
    html = _env.get_template(template).render(
        nonce=nonce, nav=NAV, path=path, logout_csrf=logout_csrf, **context
    )
    # No page of the customer's shows an image (the consent page shows a
    # vendor's logo, hence page()'s default).
    return page(html, nonce, status=status, images="'none'")
