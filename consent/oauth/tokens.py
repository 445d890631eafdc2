"""Issued tokens: opaque strings, stored as keyed hashes, tied to a grant.

:func:`check_access_token` is what every resource (userinfo, the vendor data
API) calls: it answers from the token row *and* its grant, so a revoked,
narrowed or expired grant changes the answer on the very next request.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, or_

from consent.audit import events as audit
from consent.grants import service as grants
from consent.grants.models import Grant
from consent.oauth import store
from consent.oauth.store import TokenRow
from consent.policy import CLIENT_SCOPES, Access, effective
from consent.vendors.models import Vendor
from vrm.dbtypes import utcnow

# Re-exported: the authorization server names them through this module.
from vrm.keys.pairwise import pairwise as pairwise
from vrm.keys.pairwise import pairwise_subject as pairwise_subject
from vrm.keys.service import Vault

ACCESS_PREFIX = "vat_"
REFRESH_PREFIX = "vrt_"
# A token is its prefix, the id of its row (32 hex digits, time first: see
# consent.oauth.server._row_id) and 32 random bytes, base64url: the id finds
# the row by its primary key, and the keyed hash of the whole token, stored
# in the row, is checked after. Tokens issued before migration 0006 are the
# prefix and the random part only, and are found by their hash.
ID_LENGTH = 32
_SECRET_BYTES = 32
_HEX = frozenset("0123456789abcdef")


def new_access_token(token_id: str) -> str:
    return ACCESS_PREFIX + token_id + secrets.token_urlsafe(_SECRET_BYTES)


def new_refresh_token(token_id: str) -> str:
    return REFRESH_PREFIX + token_id + secrets.token_urlsafe(_SECRET_BYTES)


def id_of(token: str) -> str | None:
    """The row id a token carries (after its 4-character prefix), or None
    for a token of the form issued before migration 0006."""
    if len(token) != 4 + ID_LENGTH + 43:  # 43: base64url of 32 bytes
        return None
    token_id = token[4 : 4 + ID_LENGTH]
    return token_id if _HEX.issuperset(token_id) else None


@dataclass(frozen=True)
class ActiveToken:
    """A token that may be used right now, with what it may do right now."""

    token: TokenRow
    vendor: Vendor
    grant: Grant | None
    accesses: list[Access]
    openid: bool
    # The client's own scopes of a client-credentials token (feed:read for
    # a vendor, audit:read for an auditor).
    vendor_scopes: tuple[str, ...] = ()
    # All of it as a scope string (what a token response and introspection
    # say the token may do).
    scope: str = ""


def _usable(
    row: TokenRow, vendor: Vendor, grant: Grant | None, now: datetime, scope: str
) -> ActiveToken | None:
    if row.revoked_at is not None or vendor.disabled_at is not None:
        return None
    if grant is None:
        if row.grant_id is not None:  # its grant is gone
            return None
        # Client credentials: vendor-wide scopes, no customer data.
        own = CLIENT_SCOPES[vendor.role]
        vendor_scopes = tuple(s for s in scope.split() if s in own)
        return ActiveToken(row, vendor, None, [], False, vendor_scopes, " ".join(vendor_scopes))
    if not grants.is_active(grant, now):
        return None
    # The token's scope cut down to its grant's (consent/policy.py).
    accesses, openid, allowed = effective(scope, tuple(grant.scopes), grant.openid)
    return ActiveToken(row, vendor, grant, list(accesses), openid, (), allowed)


@dataclass(frozen=True)
class Found:
    """A token row as stored, with its vendor and grant, whether usable or not."""

    row: TokenRow
    vendor: Vendor
    grant: Grant | None
    kind: str  # access_token | refresh_token

    def usable(self) -> ActiveToken | None:
        """What the token may do right now, or None if nothing: expired,
        revoked, refreshed already (a refresh token), its vendor disabled or
        its grant revoked or expired."""
        now = utcnow()
        row = self.row
        end: datetime | None
        scope = row.scope
        if self.kind == "access_token":
            end = row.expires_at
        elif row.refreshed_at is None:
            end = row.refresh_expires_at
            if row.refresh_scope is not None:  # wider than its access token
                scope = row.refresh_scope
        else:
            return None
        if end is None or end <= now:
            return None
        return _usable(row, self.vendor, self.grant, now, scope)


def spent(before: datetime) -> ColumnElement[bool]:
    """The token rows no token of which could be used at ``before`` or
    since, as :meth:`Found.usable` decides, in SQL (for vrm/purge.py):
    revoked by then, or with both tokens expired by then. A refreshed row
    counts as live until its refresh token would have expired: a replay of
    it in that time still finds it and revokes its family."""
    row = store.TOKEN.c
    refresh_over = or_(row.refresh_expires_at.is_(None), row.refresh_expires_at < before)
    return or_(row.revoked_at < before, and_(row.expires_at < before, refresh_over))


def _key(token: str, token_hash: bytes, hash_column: str) -> dict[str, Any]:
    """How the store finds a token's row: by the id it carries, or, for a
    token issued before migration 0006, by its hash."""
    token_id = id_of(token)
    return {"token_id": token_id} if token_id is not None else {hash_column: token_hash}


def _checked(
    found: tuple[TokenRow, Vendor, Grant | None] | None, token_hash: bytes, kind: str
) -> Found | None:
    """The row found, if the token's hash is the one stored (compared in
    constant time): anyone may know an id."""
    if found is None:
        return None
    stored = found[0].access_hash if kind == "access_token" else found[0].refresh_hash
    if stored is None or not hmac.compare_digest(stored, token_hash):
        return None
    return Found(*found, kind)


def find_access(conn: Connection, vault: Vault, token: str) -> Found | None:
    if not token.startswith(ACCESS_PREFIX):
        return None
    token_hash = vault.token_hash(token)
    found = store.token(conn, **_key(token, token_hash, "access_hash"))
    return _checked(found, token_hash, "access_token")


def find_refresh(
    conn: Connection, vault: Vault, token: str, vendor: Vendor | None = None
) -> Found | None:
    """The refresh token's row; with ``vendor`` (already read), only if it
    is that vendor's."""
    if not token.startswith(REFRESH_PREFIX):
        return None
    token_hash = vault.token_hash(token)
    key = _key(token, token_hash, "refresh_hash")
    if vendor is not None:
        found = store.refresh_token_of(conn, vendor, **key)
    else:
        found = store.token(conn, **key)
    return _checked(found, token_hash, "refresh_token")


def find_any(conn: Connection, vault: Vault, token: str) -> Found | None:
    """The row of an access or refresh token (their prefixes tell which)."""
    return find_access(conn, vault, token) or find_refresh(conn, vault, token)


def check_access_token(conn: Connection, vault: Vault, token: str) -> ActiveToken | None:
    """What this access token may do right now, or None. One query: the
    token, its vendor and its grant, all checked on every call."""
    found = find_access(conn, vault, token)
    return found.usable() if found is not None else None


def consume_refresh(conn: Connection, row: TokenRow) -> bool:
    """Mark the refresh token used, atomically: True for the first use only.
    A second use (a replay, or a stolen copy racing the real client) gets
    False, and the caller revokes the family."""
    return store.consume_refresh(conn, row.id, utcnow())


def revoke_family(
    conn: Connection,
    *,
    vendor_id: str,
    customer_id: str | None,
    grant_id: str | None,
    family_id: str,
    reason: str,
    reused: str | None = None,
) -> None:
    """Revoke every token of the family (all of one authorization), which
    lives under its grant, and log it (consent/audit/events.py): at the
    vendor's request, or because ``reused`` (a refresh token or a code) was
    used twice."""
    store.revoke_family(conn, grant_id, family_id, utcnow())
    audit.token_revoked(
        conn,
        vendor_id=vendor_id,
        customer_id=customer_id,
        grant_id=grant_id,
        family_id=family_id,
        whole_family=True,
        reason=reason,
        reused=reused,
    )
