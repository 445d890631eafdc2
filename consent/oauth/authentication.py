"""Who is asking at the authorization endpoint, since when, and whether the
request needs a new login (OIDC Core 3.1.2.1: ``prompt=login``,
``max_age``). ``auth_time`` in an ID token is the login time found here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from consent.oauth.requests import Request as OAuthRequest
from vrm.accounts import sessions
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow
from vrm.keys.service import Vault


@dataclass(frozen=True)
class Login:
    """The customer behind the session cookie, and when they logged in."""

    customer: Customer
    token: str
    at: datetime


def current_login(session: Session, vault: Vault, token: str | None) -> Login | None:
    if not token:
        return None
    row = sessions.login_session(session=session, vault=vault, token=token)
    customer = session.get(Customer, row.customer_id) if row is not None else None
    if row is None or customer is None:
        return None
    return Login(customer, token, row.created_at)


def prompts(oreq: OAuthRequest) -> set[str]:
    return set((oreq.payload.data.get("prompt") or "").split())


def must_log_in(oreq: OAuthRequest, login: Login | None) -> bool:
    """OIDC Core 3.1.2.1: log in when there is no session, when the client
    asks for it (``prompt=login``), or when the login is older than
    ``max_age`` seconds."""
    if login is None or "login" in prompts(oreq):
        return True
    max_age = oreq.max_age
    return max_age is not None and (utcnow() - login.at).total_seconds() > max_age


def to_login(oreq: OAuthRequest) -> Response:
    """To the login page, and back to this request without what asked for
    the login (``prompt=login``, ``max_age``): the customer has just given
    their password, and coming back must not send them round again."""
    back: list[tuple[str, str]] = []
    for name, value in oreq.parameters():
        if name == "prompt":
            value = " ".join(p for p in value.split() if p != "login")
        if name != "max_age" and value:
            back.append((name, value))
    target = "/oauth/authorize?" + urlencode(back)
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
