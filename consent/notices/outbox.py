"""The outbox: notices written with their tombstones, claimed by workers,
and what each attempt met.

A worker claims due notices by moving their ``due_at`` past the attempt
(:data:`LEASE`) in a transaction of its own, so that no other worker takes
them meanwhile: on PostgreSQL with ``FOR UPDATE SKIP LOCKED``, so workers
running at once take different notices without waiting on each other;
on SQLite, where one writer runs at a time, the claim's update names the
due time it read, and a notice another worker moved first is not claimed.
A worker that dies mid-attempt leaves its notices to be taken again when
the lease ends: delivery is at least once, and the ``jti`` lets the vendor
apply a notice once.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select, update

from consent.audit import events as audit
from consent.grants.models import Grant
from consent.notices.delivery import Outcome, next_attempt
from consent.notices.models import DELIVERED, PARKED, PENDING, VendorNotice
from consent.notices.secevent import Withdrawal
from consent.vendors.models import Vendor
from vrm.dbtypes import utcnow
from vrm.feed.models import FeedNotice
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault

# Longer than an attempt can take (delivery's timeout, times the
# attempts of one batch a worker makes in turn).
LEASE = timedelta(minutes=2)


def enqueue(session: Session, vendor_id: str, seq: int) -> None:
    """A notice of the tombstone at ``seq``, if the vendor takes notices
    (has a ``notify_uri``). In the tombstone's transaction; the caller
    commits. A disabled vendor is told too: it must still delete."""
    vendor = session.get(Vendor, vendor_id)
    if vendor is None or not vendor.notify_uri:
        return
    now = utcnow()
    session.flush()  # the tombstone first: the notice's foreign key names it
    session.add(
        VendorNotice(
            seq=seq,
            vendor_id=vendor_id,
            jti=secrets.token_hex(16),
            state=PENDING,
            created_at=now,
            due_at=now,
        )
    )


@dataclass(frozen=True)
class Claimed:
    """A notice a worker holds for one attempt."""

    seq: int
    attempts: int
    created_at: datetime
    notify_uri: str
    customer_id: str | None  # None once the account is erased
    withdrawal: Withdrawal


_INITIATOR = {"operator": "admin", "customer": "user", "vendor": "user"}


def _initiating_entity(reason: str | None, revoked_by: str | None) -> str:
    if reason == "expired":
        return "policy"
    if reason == "revoked":
        return _INITIATOR.get(revoked_by or "", "user")
    return "user"


def claim(session: Session, vault: Vault, now: datetime, limit: int) -> list[Claimed]:
    """Up to ``limit`` due notices, held for :data:`LEASE`. Commits."""
    due = (
        select(VendorNotice.seq, VendorNotice.due_at)
        .where(VendorNotice.state == PENDING, VendorNotice.due_at <= now)
        .order_by(col(VendorNotice.due_at))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    found = session.exec(due).all()
    if not found:
        session.rollback()
        return []
    held = [
        seq
        for seq, due_at in found
        if session.exec(
            update(VendorNotice)
            .where(col(VendorNotice.seq) == seq, col(VendorNotice.due_at) == due_at)
            .values(due_at=now + LEASE)
        ).rowcount
    ]
    rows = session.exec(
        select(VendorNotice, FeedNotice, Vendor, Grant.revoked_by)
        .join(FeedNotice, col(FeedNotice.seq) == VendorNotice.seq)
        .join(Vendor, col(Vendor.id) == VendorNotice.vendor_id)
        .outerjoin(Grant, col(Grant.id) == FeedNotice.grant_id)
        .where(col(VendorNotice.seq).in_(held))
        .order_by(col(VendorNotice.due_at))
    ).all()
    session.commit()
    claimed = []
    for notice, tombstone, vendor, revoked_by in rows:
        subject = tombstone.subject
        if subject is None:
            assert tombstone.customer_id is not None  # noqa: S101 - one or the other
            subject = pairwise_subject(vault, vendor.id, tombstone.customer_id)
        withdrawal = Withdrawal(
            jti=notice.jti,
            txn=str(tombstone.seq),
            client_id=vendor.id,
            subject=subject,
            grant_id=tombstone.grant_id,
            reason=tombstone.reason or "revoked",
            fields=list(tombstone.fields),
            at=tombstone.at,
            initiating_entity=_initiating_entity(tombstone.reason, revoked_by),
            expires_at=tombstone.expires_at,
        )
        claimed.append(
            Claimed(
                seq=notice.seq,
                attempts=notice.attempts,
                created_at=notice.created_at,
                notify_uri=vendor.notify_uri or "",
                customer_id=tombstone.customer_id,
                withdrawal=withdrawal,
            )
        )
    return claimed


def record(session: Session, results: Sequence[tuple[Claimed, Outcome]], now: datetime) -> None:
    """What each attempt met, with its entry on the audit log. Commits."""
    for claimed, outcome in results:
        notice = session.get(VendorNotice, claimed.seq)
        if notice is None or notice.state != PENDING:
            continue  # its vendor or tombstone went meanwhile, or an operator moved it
        notice.attempts += 1
        notice.outcome = outcome.text
        parked = False
        if outcome.acknowledged:
            notice.state = DELIVERED
            notice.delivered_at = now
        else:
            due = (
                None
                if outcome.final
                else next_attempt(notice.attempts, notice.created_at, now, outcome.retry_after)
            )
            if due is None:
                notice.state = PARKED
                # Not the claim's lease, which would say it is still due.
                notice.due_at = now
                parked = True
            else:
                notice.due_at = due
        session.add(notice)
        withdrawal = claimed.withdrawal
        audit.notice_attempted(
            session.connection(),
            at=now,
            vendor_id=withdrawal.client_id,
            customer_id=claimed.customer_id,
            grant_id=withdrawal.grant_id,
            jti=withdrawal.jti,
            reason=withdrawal.reason,
            attempt=notice.attempts,
            outcome=outcome.text,
            acknowledged=outcome.acknowledged,
            parked=parked,
        )
    session.commit()


def listed(
    session: Session, *, state: str | None = None, vendor_id: str | None = None, limit: int = 100
) -> list[VendorNotice]:
    """Notices, oldest first: what ``vrm notices list`` shows."""
    query = select(VendorNotice).order_by(col(VendorNotice.seq)).limit(limit)
    if state is not None:
        query = query.where(VendorNotice.state == state)
    if vendor_id is not None:
        query = query.where(VendorNotice.vendor_id == vendor_id)
    return list(session.exec(query).all())


def retry(session: Session, *, seq: int | None = None, vendor_id: str | None = None) -> int:
    """Put parked notices back in the queue, due now and with a new day of
    attempts: one (``seq``), a vendor's, or all. Commits; how many."""
    now = utcnow()
    query = update(VendorNotice).where(col(VendorNotice.state) == PARKED)
    if seq is not None:
        query = query.where(col(VendorNotice.seq) == seq)
    if vendor_id is not None:
        query = query.where(col(VendorNotice.vendor_id) == vendor_id)
    count = session.exec(query.values(state=PENDING, due_at=now, created_at=now)).rowcount
    session.commit()
    return int(count)


def undelivered() -> ColumnElement[bool]:
    """Tombstones whose notice is not delivered yet: the purge keeps them
    (the notice reads what to say from its tombstone)."""
    waiting = (
        select(VendorNotice.seq)
        .where(
            col(VendorNotice.seq) == FeedNotice.seq,
            col(VendorNotice.state) != DELIVERED,
        )
        .exists()
    )
    return waiting
