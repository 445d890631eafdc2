"""The vendor API's token edge: the Bearer token a call sends, checked, and the
reader (vendor, customer, grant) it stands for; RFC 6750 errors otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from consent.oauth.tokens import ActiveToken, check_access_token
from consent.policy import Access
from vrm.errors import (
    Forbidden,
    Unauthenticated,
)
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault

NO_CUSTOMER = "This token names no customer; use one from the authorization code flow."


class InvalidToken(Unauthenticated):
    """RFC 6750 3.1: no token, or one that is not active (unknown, expired,
    revoked, or its grant ended)."""

    slug = "invalid-token"

    def __init__(self, detail: str, *, token_sent: bool) -> None:
        super().__init__(detail)
        self.token_sent = token_sent

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer realm="vrm"'
        if self.token_sent:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class InsufficientScope(Forbidden):
    """RFC 6750 3.1 ``insufficient_scope``: the token is good, the grant
    does not cover what was asked."""

    slug = "insufficient-scope"

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        super().__init__(detail, **({"scope": scope} if scope else {}))
        self.scope = scope

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer realm="vrm", error="insufficient_scope"'
        if self.scope:
            challenge += f', scope="{self.scope}"'
        return {"WWW-Authenticate": challenge}


@dataclass(frozen=True)
class Reader:
    """One vendor reading one customer under one grant."""

    vendor_id: str
    customer_id: str
    grant_id: str
    purpose: str
    subject: str
    accesses: list[Access]


def active_token(conn: Connection, vault: Vault, token: str | None) -> ActiveToken:
    """What the Bearer token sent may do right now; InvalidToken if none was
    sent or it is not active."""
    if token is None:
        raise InvalidToken("Send an access token as Authorization: Bearer.", token_sent=False)
    active = check_access_token(conn, vault, token)
    if active is None:
        raise InvalidToken("The access token is not active.", token_sent=True)
    return active


def reader_of(vault: Vault, active: ActiveToken) -> Reader:
    """The reader an access token from the authorization code flow stands
    for; InsufficientScope for a token that names no customer."""
    customer_id = active.token.customer_id
    if customer_id is None or active.grant is None:
        raise InsufficientScope(NO_CUSTOMER)
    return Reader(
        vendor_id=active.vendor.id,
        customer_id=customer_id,
        grant_id=active.grant.id,
        purpose=active.grant.purpose,
        subject=pairwise_subject(vault, active.vendor.id, customer_id),
        accesses=active.accesses,
    )
