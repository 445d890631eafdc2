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

A customer-held root key (vrm/keys/custody.py) travels with the login as
it does with a session cookie, and is never stored usable: the device
page seals it to the device code (:func:`seal_approval`), the exchange of
the code opens that seal and seals it under the new access and refresh
tokens (:func:`token_seals`), each refresh opens the refresh token's and
seals for the next pair, and a request opens the access token's and hands
the key to the vault for at most ``UNLOCK_SECONDS`` (:func:`customer_of`).
The database keeps the tokens' keyed hashes only, so a copy of it opens
none of these seals. Vendors' tokens carry none.
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
from consent.oauth.models import DeviceAuthorization
from consent.oauth.rows import VENDOR
from consent.oauth.store import TokenRow
from consent.policy import FIRST_PARTY_SCOPES
from vrm.accounts.models import Customer
from vrm.crypto import aead
from vrm.dbtypes import utcnow
from vrm.keys import custody
from vrm.keys.service import UNLOCK_SECONDS, Vault

CLIENT_ID = "vrm-me"
ROLE = "first_party"
SCOPE = FIRST_PARTY_SCOPES[0]
NAME = "vrm-me, your command line"
# What each token's seal of a root key is bound to (vrm/keys/custody.py).
_ACCESS = "access-token"
_REFRESH = "refresh-token"
NO_SEALS: dict[str, bytes | None] = {"root_by_access": None, "root_by_refresh": None}


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
    row = active.token
    if row.root_by_access is not None:
        try:
            root = custody.open_for_credential(
                bearer.token_of(headers) or "",
                customer_id,
                row.id,
                row.root_by_access,
                kind=_ACCESS,
            )
        except aead.SealError:
            # An altered row: no token, as for a session (vrm/accounts/sessions.py).
            raise bearer.InvalidToken(bearer.NOT_ACTIVE, token_sent=True) from None
        left = (row.expires_at - utcnow()).total_seconds()
        vault.unlock(customer_id, root, seconds=min(UNLOCK_SECONDS, left))
    return customer


def _device_holder(row: DeviceAuthorization) -> str:
    return f"device-authorization/{row.device_hash.hex()}"


def seal_approval(row: DeviceAuthorization, customer_id: str, root: bytes | None) -> bytes | None:
    """What the approved device request keeps of the customer's root key
    (their login session's, vrm.accounts.sessions.root_of): sealed to its
    device code; None for a server-held customer."""
    if root is None or row.root_key is None:
        return None
    return custody.seal_for_device(row.root_key, customer_id, _device_holder(row), root)


def device_root(row: DeviceAuthorization, device_code: str) -> bytes | None:
    """The root key the approved request holds, opened with its device
    code; None if it holds none. Raises :class:`vrm.crypto.aead.SealError`
    for a seal that does not open (an altered row)."""
    if row.root_sealed is None or row.customer_id is None:
        return None
    return custody.open_for_device(
        device_code, row.customer_id, _device_holder(row), row.root_sealed
    )


def refresh_root(row: TokenRow, refresh_token: str) -> bytes:
    """The root key a token row holds for its refresh token (the caller
    checked ``root_by_refresh`` is set). Raises
    :class:`vrm.crypto.aead.SealError` if it does not open."""
    return custody.open_for_credential(
        refresh_token, row.customer_id or "", row.id, row.root_by_refresh or b"", kind=_REFRESH
    )


def token_seals(
    token: Mapping[str, Any], token_id: str, customer_id: str, root: bytes
) -> dict[str, bytes | None]:
    """A new token row's seals of the root key, one under each of its
    tokens (the columns of :data:`NO_SEALS`)."""
    refresh = token.get("refresh_token")
    return {
        "root_by_access": custody.seal_for_credential(
            token["access_token"], customer_id, token_id, root, kind=_ACCESS
        ),
        "root_by_refresh": None
        if refresh is None
        else custody.seal_for_credential(refresh, customer_id, token_id, root, kind=_REFRESH),
    }


def predates_password(customer: Customer, issued_at: datetime) -> bool:
    """Whether a token was issued before the customer's password last
    changed: a password change ends every login, the command line's as
    well as the sessions (RFC 9700 4.14.2). Refreshing such a token is
    refused too (grants/refresh_token.py), so no token issued after the
    change descends from one issued before it."""
    return issued_at < customer.password_changed_at
