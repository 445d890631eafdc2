"""Grant rules: create, find a covering one, narrow, shorten, revoke.

A grant is active while it is neither revoked nor expired. Tokens never
outlive their grant: every token use goes through :func:`active_grant`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col, select, update

from consent.grants import vendor_copy
from consent.grants.models import Grant, GrantChange
from consent.oauth.models import AuthorizationCode, OAuthToken
from consent.policy import Access, field_names, parse_scope, simplify, within
from consent.scopes import DETAIL_TYPE, DataRequest
from consent.vendors.models import Vendor
from vrm.dbtypes import utcnow
from vrm.errors import NotFound, ValidationFailed
from vrm.feed import changes as feed
from vrm.feed.models import FeedNotice

# A grant lasts at most this long; the customer may always choose less.
MAX_GRANT_DAYS = 2 * 365
DEFAULT_GRANT_DAYS = 365


def accesses_of(grant: Grant) -> list[Access]:
    return [parse_scope(s) for s in grant.scopes]


def is_active(grant: Grant, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return grant.revoked_at is None and grant.expires_at > now


def status_of(grant: Grant, now: datetime | None = None) -> str:
    if grant.revoked_at is not None:
        return "revoked"
    return "active" if is_active(grant, now) else "expired"


def details_for(accesses: list[Access], purpose: str, grant: Grant) -> list[dict[str, Any]]:
    """RFC 9396 authorization details describing exactly ``accesses``."""
    groups: dict[tuple[str, str], list[str] | None] = {}
    for a in simplify(accesses):
        key = (a.category, a.action)
        if a.field is None:
            groups[key] = None
        elif key not in groups or groups[key] is not None:
            groups.setdefault(key, [])
            fields = groups[key]
            assert fields is not None  # noqa: S101 - set just above
            fields.append(a.field)
    out: list[dict[str, Any]] = []
    for (category, action), fields in sorted(groups.items()):
        detail: dict[str, Any] = {
            "type": DETAIL_TYPE,
            "datatypes": [category],
            "actions": [action],
            "purpose": purpose,
            "expires_at": grant.expires_at.isoformat().replace("+00:00", "Z"),
        }
        if fields is not None:
            detail["fields"] = fields
        if grant.retention is not None:
            detail["retention"] = grant.retention
        out.append(detail)
    return out


def _record(session: Session, grant: Grant, kind: str, by: str, detail: dict[str, Any]) -> None:
    session.add(GrantChange(grant_id=grant.id, at=utcnow(), kind=kind, by=by, detail=detail))


def create(
    session: Session,
    *,
    customer_id: str,
    vendor_id: str,
    request: DataRequest,
    allowed: list[Access],
    expires_at: datetime,
) -> Grant:
    """A new grant for what the customer allowed, which is never more than
    the vendor asked for. Its ``granted`` entry keeps the vendor as the
    customer saw it (:mod:`consent.grants.vendor_copy`). The caller commits."""
    allowed = within(allowed, request.accesses)
    if not allowed and not request.openid:
        raise ValidationFailed("Nothing was allowed; deny the request instead.")
    vendor = session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No such vendor.")
    now = utcnow()
    grant = Grant(
        id=secrets.token_hex(16),
        customer_id=customer_id,
        vendor_id=vendor_id,
        scopes=[a.scope for a in allowed],
        openid=request.openid,
        purpose=request.purpose,
        retention=request.retention,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    if request.details is not None:
        grant.authorization_details = details_for(allowed, request.purpose, grant)
    session.add(grant)
    session.flush()
    _record(
        session,
        grant,
        "granted",
        "customer",
        {
            "requested": [a.scope for a in request.accesses],
            "granted": grant.scopes,
            "purpose": grant.purpose,
            "expires_at": grant.expires_at.isoformat(),
            "vendor": vendor_copy.record(vendor, now),
        },
    )
    grant.feed_seq = feed.grant_started(
        session, vendor_id=vendor_id, grant_id=grant.id, customer_id=customer_id
    )
    return grant


def find_covering(
    session: Session, *, customer_id: str, vendor_id: str, request: DataRequest
) -> Grant | None:
    """An active grant that already allows everything asked for, for the
    same purpose and at least as long as asked, given to the vendor as it
    shows itself now: after a change of name, logo, policy or contacts the
    customer is asked again rather than held to a consent given to what
    the vendor was."""
    now = utcnow()
    rows = session.exec(
        select(Grant).where(
            Grant.customer_id == customer_id,
            Grant.vendor_id == vendor_id,
            Grant.purpose == request.purpose,
            col(Grant.revoked_at).is_(None),
            Grant.expires_at > now,
        )
    ).all()
    for grant in sorted(rows, key=lambda g: g.created_at, reverse=True):
        if request.openid and not grant.openid:
            continue
        if request.expires_at is not None and grant.expires_at < request.expires_at:
            continue
        if within(request.accesses, accesses_of(grant)) != simplify(request.accesses):
            continue
        if not vendor_copy.changed_since_consent(session, grant):
            return grant
    return None


def get_for_customer(session: Session, customer_id: str, grant_id: str) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None or grant.customer_id != customer_id:
        raise NotFound("No such grant.")
    return grant


def list_for_customer(session: Session, customer_id: str) -> list[Grant]:
    return list(
        session.exec(
            select(Grant)
            .where(Grant.customer_id == customer_id)
            .order_by(col(Grant.created_at).desc(), col(Grant.id))
        ).all()
    )


def changes(session: Session, grant_id: str) -> list[GrantChange]:
    return list(
        session.exec(
            select(GrantChange)
            .where(GrantChange.grant_id == grant_id)
            .order_by(col(GrantChange.seq))
        ).all()
    )


def revoke_tokens(session: Session, grant_id: str) -> None:
    """Kill every token and unused code of the grant. Token checks also look
    at the grant itself, so this is belt and braces, and it keeps
    introspection answers simple."""
    now = utcnow()
    session.exec(
        update(OAuthToken)
        .where(col(OAuthToken.grant_id) == grant_id, col(OAuthToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    session.exec(
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.grant_id) == grant_id, col(AuthorizationCode.used_at).is_(None)
        )
        .values(used_at=now)
    )


def revoke(session: Session, grant: Grant, *, by: str) -> Grant:
    """End the grant now. Revoking twice is harmless. The caller commits."""
    if grant.revoked_at is not None:
        return grant
    now = utcnow()
    grant.revoked_at = now
    grant.revoked_by = by
    grant.updated_at = now
    session.add(grant)
    revoke_tokens(session, grant.id)
    _record(session, grant, "revoked", by, {})
    _tombstone(session, grant, "revoked")
    return grant


def narrow(
    session: Session,
    grant: Grant,
    *,
    scopes: list[str] | None,
    expires_at: datetime | None,
) -> Grant:
    """Take fields or categories away, or bring the expiry closer. Anything
    that would widen the grant is refused. The caller commits."""
    if not is_active(grant):
        raise ValidationFailed("Only an active grant can be changed.")
    now = utcnow()
    removed: set[str] = set()
    if scopes is not None:
        try:
            wanted = simplify([parse_scope(s) for s in scopes])
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        current = accesses_of(grant)
        if within(wanted, current) != wanted:
            raise ValidationFailed("A grant can only be narrowed; ask the vendor to request more.")
        if not wanted and not grant.openid:
            raise ValidationFailed("Nothing would be left; revoke the grant instead.")
        if wanted != current:
            _record(
                session,
                grant,
                "narrowed",
                "customer",
                {"from": grant.scopes, "to": [a.scope for a in wanted]},
            )
            removed = field_names(current) - field_names(wanted)
            grant.scopes = [a.scope for a in wanted]
    if expires_at is not None:
        if expires_at > grant.expires_at:
            raise ValidationFailed("A grant's expiry can only be brought closer.")
        if expires_at <= now:
            raise ValidationFailed("To end a grant now, revoke it.")
        if expires_at != grant.expires_at:
            _record(
                session,
                grant,
                "shortened",
                "customer",
                {"from": grant.expires_at.isoformat(), "to": expires_at.isoformat()},
            )
            grant.expires_at = expires_at
    if grant.authorization_details is not None:
        grant.authorization_details = details_for(accesses_of(grant), grant.purpose, grant)
    grant.updated_at = now
    session.add(grant)
    if removed:
        _tombstone(session, grant, "narrowed", removed)
    return grant


def _tombstone(
    session: Session,
    grant: Grant,
    reason: str,
    fields: set[str] | None = None,
    *,
    dedupe: bool = False,
) -> int | None:
    """Tell the vendor on its feed to delete ``fields`` (all the grant gives
    when None). With ``dedupe``, once per grant and reason."""
    return feed.grant_ended(
        session,
        vendor_id=grant.vendor_id,
        grant_id=grant.id,
        customer_id=grant.customer_id,
        reason=reason,
        fields=field_names(accesses_of(grant)) if fields is None else fields,
        dedupe_key=f"{grant.id}:{reason}" if dedupe else None,
    )


def expire_due(session: Session, *, vendor_id: str) -> int:
    """Put a tombstone on the feed for each of the vendor's grants that ran
    out since the last call (expiry writes nothing when it happens). Safe to
    run from two readers at once; commits. Returns how many were added."""
    now = utcnow()
    told = select(FeedNotice.seq).where(
        FeedNotice.grant_id == Grant.id, FeedNotice.reason == "expired"
    )
    due = session.exec(
        select(Grant).where(
            Grant.vendor_id == vendor_id,
            col(Grant.revoked_at).is_(None),
            Grant.expires_at <= now,
            ~told.exists(),
        )
    ).all()
    added = 0
    for grant in due:
        added += _tombstone(session, grant, "expired", dedupe=True) is not None
    session.commit()
    return added


def tombstones_in_use() -> ColumnElement[bool]:
    """The tombstones :func:`expire_due` reads to tell each expiry once:
    those of expired grants that still exist. A purge of old tombstones
    (vrm/purge.py) keeps these, or the expiry would be told again; each
    says no more than its grant row, and goes with it."""
    exists = select(Grant.id).where(Grant.id == FeedNotice.grant_id).exists()
    return and_(col(FeedNotice.reason) == "expired", exists)


def unrevoked(session: Session, *, customer_id: str) -> list[Grant]:
    """The customer's grants not revoked: active, or expired (whose vendor
    may not have been told yet)."""
    return list(
        session.exec(
            select(Grant).where(Grant.customer_id == customer_id, col(Grant.revoked_at).is_(None))
        ).all()
    )


def on_account_erased(session: Session, customer_id: str) -> Callable[[], None]:
    """The store's erasure hook (vrm.accounts.service.OnErase), passed in by
    the composition (vrm/hooks.py). The grants are read now, before the
    customer's rows go (they cascade); once they are gone, each vendor
    holding the customer's data gets a tombstone for all the grant gave it.
    The erasure commits."""
    grants = unrevoked(session, customer_id=customer_id)

    def tell() -> None:
        for grant in grants:
            _tombstone(session, grant, "account_deleted")

    return tell


def default_expiry(request: DataRequest, now: datetime | None = None) -> datetime:
    now = now or utcnow()
    limit = now + timedelta(days=MAX_GRANT_DAYS)
    if request.expires_at is not None:
        return min(request.expires_at, limit)
    return now + timedelta(days=DEFAULT_GRANT_DAYS)
