"""Taking consent back, in whole or in part: revoke, narrow, shorten, and
the vendor told on its feed (a tombstone) when a grant ends or shrinks, by
the customer, by expiry or by the customer's erasure.

Every way a grant ends or shrinks writes its tombstone through
:func:`_tombstone`, in the same transaction as the change
(docs/architecture.md, "How a revocation propagates").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import ColumnElement, and_
from sqlmodel import Session, col, select, update

from consent.audit import events as audit
from consent.grants.models import Grant
from consent.grants.service import _record, accesses_of, details_for, hold_escrow, is_active
from consent.notices import outbox
from consent.oauth.models import AuthorizationCode, OAuthToken
from consent.policy import field_names, parse_scope, simplify, within
from vrm.dbtypes import utcnow
from vrm.errors import ValidationFailed
from vrm.feed import changes as feed
from vrm.feed.models import FeedNotice
from vrm.keys.service import Vault


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


def end_escrow(session: Session, vault: Vault, grant: Grant) -> None:
    """What the grant escrowed no longer opens without its customer: its
    copies and its escrow key are destroyed (vrm/keys/service.py)."""
    vault.end_escrow(session, holder_id=grant.id, customer_id=grant.customer_id)


def revoke(session: Session, vault: Vault, grant: Grant, *, by: str) -> Grant:
    """End the grant now. Revoking twice is harmless. The caller commits."""
    if grant.revoked_at is not None:
        return grant
    now = utcnow()
    grant.revoked_at = now
    grant.revoked_by = by
    grant.updated_at = now
    session.add(grant)
    # The grant's row first, then its escrow: a log-in escrowing the
    # customer's live grants again (escrow_live_grants) waits on the row,
    # and then sees it revoked, or escrows before and loses it here.
    session.flush()
    end_escrow(session, vault, grant)
    revoke_tokens(session, grant.id)
    _record(session, grant, "revoked", by, {})
    _tombstone(session, grant, "revoked")
    return grant


def narrow(
    session: Session,
    vault: Vault,
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
            hold_escrow(session, vault, grant)
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
            shortened = feed.grant_shortened(
                session,
                vendor_id=grant.vendor_id,
                grant_id=grant.id,
                customer_id=grant.customer_id,
                fields=field_names(accesses_of(grant)),
                expires_at=expires_at,
            )
            outbox.enqueue(session, grant.vendor_id, shortened)
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
    when None), and push it a notice if it takes them (consent/notices).
    With ``dedupe``, once per grant and reason."""
    seq = feed.grant_ended(
        session,
        vendor_id=grant.vendor_id,
        grant_id=grant.id,
        customer_id=grant.customer_id,
        reason=reason,
        fields=field_names(accesses_of(grant)) if fields is None else fields,
        dedupe_key=f"{grant.id}:{reason}" if dedupe else None,
    )
    if seq is not None:
        outbox.enqueue(session, grant.vendor_id, seq)
    return seq


def expire_due(
    session: Session,
    vault: Vault,
    *,
    vendor_id: str | None = None,
    since: datetime | None = None,
) -> int:
    """Put a tombstone on the feed for each grant that ran out (of one
    vendor, or of all), and expired after ``since`` if given: expiry writes
    nothing when it happens. The background work calls this every few
    seconds (consent/notices/worker.py), a vendor's feed before each read.
    Safe to run from two places at once; commits. Returns how many were
    added."""
    now = utcnow()
    told = select(FeedNotice.seq).where(
        FeedNotice.grant_id == Grant.id, FeedNotice.reason == "expired"
    )
    query = select(Grant).where(
        col(Grant.revoked_at).is_(None), Grant.expires_at <= now, ~told.exists()
    )
    if vendor_id is not None:
        query = query.where(Grant.vendor_id == vendor_id)
    if since is not None:
        query = query.where(Grant.expires_at > since)
    due = session.exec(query).all()
    added = 0
    for grant in due:
        end_escrow(session, vault, grant)
        if _tombstone(session, grant, "expired", dedupe=True) is not None:
            audit.consent_changed(session.connection(), grant, "expired", "expiry", {})
            added += 1
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
