"""Shared dependencies, each declared once as an ``Annotated`` alias."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlmodel import Session
from starlette.datastructures import Headers

from vrm.accounts import devices, sessions
from vrm.accounts.models import Customer
from vrm.accounts.passwords import Passwords
from vrm.db import SessionDep
from vrm.errors import Unauthenticated, raises
from vrm.keys.service import Vault
from vrm.settings import Settings

# These only read what create_app put on app.state: async, so FastAPI calls
# them inline instead of hopping to a worker thread for each one.


async def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(app_settings)]


async def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def get_passwords(request: Request) -> Passwords:
    passwords: Passwords = request.app.state.passwords
    return passwords


VaultDep = Annotated[Vault, Depends(get_vault)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]


def session_token(request: Request, settings: SettingsDep) -> str | None:
    return request.cookies.get(settings.session_cookie_name) or None


SessionTokenDep = Annotated[str | None, Depends(session_token)]


class BearerCustomer(Protocol):
    """Who an ``Authorization`` header stands for, or an
    :class:`~vrm.errors.Unauthenticated` with its challenge: the layer
    above that issues tokens registers it at start-up as
    ``app.state.bearer_customer`` (vrm/app.py); the store knows no token."""

    def __call__(self, session: Session, vault: Vault, headers: Headers) -> Customer: ...


@raises(Unauthenticated)
def current_customer(
    request: Request, session: SessionDep, vault: VaultDep, token: SessionTokenDep
) -> Customer:
    """The customer of the session cookie or, when the request carries an
    ``Authorization`` header, of that header alone (the first-party
    client's bearer token: a bad one is refused, never passed over for a
    cookie sent beside it)."""
    if "authorization" in request.headers:
        by_token: BearerCustomer = request.app.state.bearer_customer
        return by_token(session, vault, request.headers)
    customer = (
        sessions.customer_for_token(session=session, vault=vault, token=token) if token else None
    )
    if customer is None:
        raise Unauthenticated("Log in first (POST /api/v1/session).")
    return customer


CurrentCustomer = Annotated[Customer, Depends(current_customer)]


def device(request: Request) -> str:
    """The client's device in words, for a session opened by this request."""
    return devices.describe(request.headers.get("user-agent"))


DeviceDep = Annotated[str, Depends(device)]


# The client's address and scheme are read here and nowhere else. Behind a
# proxy, uvicorn puts what the proxy says in their place, but only for the
# proxies listed in VRM_TRUSTED_PROXIES (`vrm serve`); from anyone else the
# X-Forwarded-* headers are ignored.


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientAddressDep = Annotated[str, Depends(client_address)]


def secure_cookies(request: Request) -> bool:
    """Whether the cookies of this answer are Secure: VRM_COOKIE_SECURE if
    set, else whether the request came over https."""
    settings: Settings = request.app.state.settings
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return request.url.scheme == "https"
