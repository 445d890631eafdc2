"""Issued tokens: opaque strings, stored as keyed hashes, tied to a grant.

:func:`check_access_token` is what every resource (userinfo, the vendor data
API) calls: it answers from the token row *and* its grant, so a revoked,
narrowed or expired grant changes the answer on the very next request.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select, update

from consent.grants import service as grants
from consent.grants.models import Grant
from consent.oauth.models import OAuthToken
from consent.scopes import VENDOR_SCOPES, Access, parse_scopes, scope_string, within
from consent.vendors.models import Vendor
from vrm.dbtypes import utcnow

# Re-exported: the authorization server names them through this module.
from vrm.keys.pairwise import pairwise as pairwise
from vrm.keys.pairwise import pairwise_subject as pairwise_subject
from vrm.keys.service import Vault

ACCESS_PREFIX = "vat_"
REFRESH_PREFIX = "vrt_"


def new_access_token() -> str:
    return ACCESS_PREFIX + secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ActiveToken:
    """A token that may be used right now, with what it may do right now."""

    token: OAuthToken
    vendor: Vendor
    grant: Grant | None
    accesses: list[Access]
    openid: bool
    # Vendor-wide scopes of a client-credentials token (feed:read).
    vendor_scopes: tuple[str, ...] = ()

    @property
    def scope(self) -> str:
        return " ".join([*self.vendor_scopes, scope_string(self.accesses, self.openid)]).strip()


def effective(token: OAuthToken, grant: Grant | None) -> tuple[list[Access], bool]:
    """What the token may do with customer data: its own scope, cut down to
    its grant's current scope (a narrowed grant narrows every token at once).
    A token without a grant (client credentials) reaches no customer data."""
    if grant is None:
        return [], False
    accesses, openid = parse_scopes(token.scope)
    return within(accesses, grants.accesses_of(grant)), openid and grant.openid


def _usable(session: Session, row: OAuthToken, now: datetime) -> ActiveToken | None:
    if row.revoked_at is not None:
        return None
    vendor = session.get(Vendor, row.vendor_id)
    if vendor is None or vendor.disabled_at is not None:
        return None
    grant = None
    if row.grant_id is not None:
        grant = session.get(Grant, row.grant_id)
        if grant is None or not grants.is_active(grant, now):
            return None
    accesses, openid = effective(row, grant)
    vendor_scopes = (
        () if grant is not None else tuple(s for s in row.scope.split() if s in VENDOR_SCOPES)
    )
    return ActiveToken(
        token=row,
        vendor=vendor,
        grant=grant,
        accesses=accesses,
        openid=openid,
        vendor_scopes=vendor_scopes,
    )


def _by_access_token(session: Session, vault: Vault, token: str) -> OAuthToken | None:
    if not token.startswith(ACCESS_PREFIX):
        return None
    return session.exec(
        select(OAuthToken).where(OAuthToken.access_hash == vault.token_hash(token))
    ).first()


def usable_access(session: Session, row: OAuthToken) -> ActiveToken | None:
    now = utcnow()
    if row.expires_at <= now:
        return None
    return _usable(session, row, now)


def check_access_token(session: Session, vault: Vault, token: str) -> ActiveToken | None:
    row = _by_access_token(session, vault, token)
    return usable_access(session, row) if row is not None else None


def find_refresh(session: Session, vault: Vault, token: str) -> OAuthToken | None:
    if not token.startswith(REFRESH_PREFIX):
        return None
    return session.exec(
        select(OAuthToken).where(OAuthToken.refresh_hash == vault.token_hash(token))
    ).first()


def find_any(session: Session, vault: Vault, token: str) -> tuple[OAuthToken, str] | None:
    """The row of an access or refresh token, and which of the two it is."""
    row = _by_access_token(session, vault, token)
    if row is not None:
        return row, "access_token"
    row = find_refresh(session, vault, token)
    return (row, "refresh_token") if row is not None else None


def usable_refresh(session: Session, row: OAuthToken) -> ActiveToken | None:
    now = utcnow()
    if row.refresh_expires_at is None or row.refresh_expires_at <= now:
        return None
    return _usable(session, row, now)


def consume_refresh(session: Session, row: OAuthToken) -> bool:
    """Mark the refresh token used, atomically: True for the first use only.
    A second use (a replay, or a stolen copy racing the real client) gets
    False, and the caller revokes the family."""
    result = session.exec(
        update(OAuthToken)
        .where(
            col(OAuthToken.id) == row.id,
            col(OAuthToken.refreshed_at).is_(None),
            col(OAuthToken.revoked_at).is_(None),
        )
        .values(refreshed_at=utcnow())
    )
    return bool(result.rowcount == 1)


def revoke_family(session: Session, family_id: str) -> None:
    session.exec(
        update(OAuthToken)
        .where(col(OAuthToken.family_id) == family_id, col(OAuthToken.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
