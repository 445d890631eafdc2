"""The store's own client, ``vrm-me``: the customer's command line.

It is a *public* client (no secret: it runs on the customer's machine,
RFC 8252), registered at start-up (:func:`register`, idempotent) with the
role ``first_party``,
the device authorization grant (RFC 8628) and refresh tokens, and no
redirect URI, so the authorization endpoint never serves it. Its one scope,
``account`` (consent.policy.FIRST_PARTY_SCOPES), is the customer's whole
account through the customer API, as their session cookie gives it: no
vendor may hold it. Dynamic registration cannot take its id, name or scope
(consent/registration/client_metadata.py), the authorization endpoint
refuses the scope (consent.scopes.data_request), and client credentials
give a client only its own role's scopes.

Its tokens are ordinary token rows (consent/oauth/tokens.py) with a
customer and no consent grant: a customer does not consent to themself.
:func:`customer_of` is how the customer API (vrm.deps.current_customer,
through ``app.state.bearer_customer``, set by vrm/app.py) takes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from sqlalchemy import Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from consent.oauth import bearer
from consent.oauth.rows import VENDOR
from consent.policy import FIRST_PARTY_SCOPES
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow
from vrm.keys.service import Vault

CLIENT_ID = "vrm-me"
ROLE = "first_party"
SCOPE = FIRST_PARTY_SCOPES[0]
NAME = "vrm-me, your command line"


def register(engine: Engine) -> None:
    """Register the client unless it is there (any number of processes
    may start at once): public, the device grant and refresh tokens, no
    redirect URI. The id is not of the form vendors get (``vnd_``...)."""
    insert: Any = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    row = {
        "id": CLIENT_ID,
        "name": NAME,
        "redirect_uris": [],
        "contacts": [],
        "token_endpoint_auth_method": "none",
        "grant_types": [DEVICE_CODE_GRANT_TYPE, "refresh_token"],
        "registered_by": "server",
        "role": ROLE,
        "created_at": utcnow(),
    }
    with engine.begin() as conn:
        conn.execute(insert(VENDOR).values(row).on_conflict_do_nothing(index_elements=["id"]))


def is_first_party(client_id: str | None, name: str | None = None) -> bool:
    """Whether a client id or name is the first-party client's (compared
    case-insensitively, so that no vendor registers a look-alike)."""
    names = {CLIENT_ID, NAME.casefold()}
    return any(v is not None and v.strip().casefold() in names for v in (client_id, name))


def customer_of(session: Session, vault: Vault, headers: Mapping[str, str]) -> Customer:
    """The customer whose ``vrm-me`` access token with ``account`` the
    request carries; :class:`consent.oauth.bearer.InvalidToken` (401) for
    anything else: no token, a token that is not active, or another
    client's, whatever its scope (to the customer API a vendor's token is
    no credential at all)."""
    active = bearer.active_token(session.connection(), vault, headers)
    customer_id = active.token.customer_id
    if (
        active.grant is not None
        or active.vendor.id != CLIENT_ID
        or active.vendor.role != ROLE
        or SCOPE not in active.vendor_scopes
        or customer_id is None
    ):
        raise bearer.InvalidToken(bearer.NOT_ACTIVE, token_sent=True)
    customer = session.get(Customer, customer_id)
    if customer is None or predates_password(customer, active.token.issued_at):
        # Erased (its tokens went with it), or the password changed since.
        raise bearer.InvalidToken(bearer.NOT_ACTIVE, token_sent=True)
    return customer


def predates_password(customer: Customer, issued_at: datetime) -> bool:
    """Whether a token was issued before the customer's password last
    changed: a password change ends every login, the command line's as
    well as the sessions (RFC 9700 4.14.2). Refreshing such a token is
    refused too (grants/refresh_token.py), so no token issued after the
    change descends from one issued before it."""
    return issued_at < customer.password_changed_at
