"""Who is on a page, and whether a form came from one of our pages.

A page that needs a customer declares :data:`PageCustomerDep`; without a
live session it answers 303 to ``/login?next=`` the page, and the login
page (consent/login.py) brings the customer back. The session is the API's
own (the same cookie, ``vrm.accounts.sessions``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.responses import RedirectResponse, Response

from consent.login import safe_next
from consent.pages import csrf_ok, csrf_token
from vrm.accounts import sessions
from vrm.accounts.models import Customer
from vrm.db import SessionDep
from vrm.deps import SessionTokenDep, VaultDep
from vrm.keys.service import Vault

# The fields every form of a logged-in customer sends besides its own.
CSRF_FIELD = {"csrf": 200}


class LoginRequired(Exception):
    """A page asked for by someone without a live session."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


async def to_login(_request: Request, exc: Exception) -> Response:
    """The answer to :class:`LoginRequired`: the login page, and back."""
    next_url = exc.next_url if isinstance(exc, LoginRequired) else "/"
    return RedirectResponse(f"/login?next={quote(next_url, safe='/')}", status_code=303)


@dataclass(frozen=True)
class PageCustomer:
    """The logged-in customer, and the session token their forms' CSRF
    tokens are bound to (never shown: only MACs of it are)."""

    customer: Customer
    token: str
    vault: Vault

    def csrf(self, form: str) -> str:
        """The token of ``form`` (its action path) for this session."""
        return csrf_token(self.vault, self.token, f"web {form}")

    def csrf_ok(self, form: str, given: str | None) -> bool:
        """Compared in constant time (consent.pages.csrf_ok)."""
        return csrf_ok(self.vault, self.token, f"web {form}", given)

    @property
    def logout_csrf(self) -> str:
        return self.csrf("/logout")


def _here(request: Request) -> str:
    query = request.url.query
    return safe_next(request.url.path + (f"?{query}" if query else ""))


def optional_customer(
    session: SessionDep, vault: VaultDep, token: SessionTokenDep
) -> PageCustomer | None:
    if not token:
        return None
    customer = sessions.customer_for_token(session=session, vault=vault, token=token)
    return PageCustomer(customer, token, vault) if customer is not None else None


MaybeCustomerDep = Annotated[PageCustomer | None, Depends(optional_customer)]


def page_customer(request: Request, found: MaybeCustomerDep) -> PageCustomer:
    if found is None:
        raise LoginRequired(_here(request))
    return found


PageCustomerDep = Annotated[PageCustomer, Depends(page_customer)]

FORM_EXPIRED = (
    "This form expired or did not come from this site, so nothing was changed. "
    "Please check it and send it again."
)
