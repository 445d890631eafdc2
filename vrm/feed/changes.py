"""Writing to the change log. Every write to customer data and every grant
event calls one of these as its last step before commit (see models.py for
why the position must be taken last)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from vrm.dbtypes import utcnow
from vrm.feed.models import DataChange, FeedClock, FeedNotice

PUT = "put"
DELETE = "delete"


def tick(session: Session) -> int:
    """Take the next position. The lock this takes is held until commit."""
    result = session.execute(
        update(FeedClock)
        .where(col(FeedClock.id) == 1)
        .values(seq=col(FeedClock.seq) + 1)
        .returning(col(FeedClock.seq))
    )
    return int(result.scalar_one())


def high_water(session: Session) -> int:
    """The last position handed out and committed, as this transaction sees
    it: every position up to it is visible."""
    return int(
        session.execute(select(col(FeedClock.seq)).where(col(FeedClock.id) == 1)).scalar_one()
    )


def _upsert(
    session: Session, values: dict[str, Any], keys: list[str], update_cols: list[str]
) -> None:
    dialect = session.get_bind().dialect.name
    table = DataChange.__table__  # type: ignore[attr-defined]
    stmt: Any
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values)
    else:
        stmt = sqlite.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=keys, set_={c: stmt.excluded[c] for c in update_cols}
    )
    session.execute(stmt)


def touch_document(session: Session, *, customer_id: str, category: str) -> int:
    """Record that a document (profile, preferences) was written. History
    events go through :func:`touch_event`."""
    seq = tick(session)
    _put_change(session, seq, customer_id, category, category, PUT)
    return seq


def _put_change(
    session: Session, seq: int, customer_id: str, category: str, record_id: str, op: str
) -> None:
    _upsert(
        session,
        {
            "customer_id": customer_id,
            "category": category,
            "record_id": record_id,
            "seq": seq,
            "op": op,
            "at": utcnow(),
        },
        keys=["customer_id", "category", "record_id"],
        update_cols=["seq", "op", "at"],
    )


def touch_event(session: Session, *, customer_id: str, event_id: str) -> int:
    """Record a write of a history event that exists after it: always a
    ``put``, labelled ``private`` or not.

    Which events a customer keeps private is itself personal, so while an
    event exists nothing stored in the clear may tell (issue 13): whether a
    vendor may see it, and whether one may ever have been shown it, are
    sealed in the event (``StoredEvent.shared``). Whoever reads the log
    opens the event to decide (vrm/vendor_api/events.py, event_change):
    visible, it is sent; private but once shared, its id is sent as a
    deletion; private all along, nothing is, not even a bare id."""
    seq = tick(session)
    _put_change(session, seq, customer_id, "history", event_id, PUT)
    return seq


def event_deleted(session: Session, *, customer_id: str, event_id: str, shared: bool) -> int:
    """Record that a history event is gone. A vendor may hold one that was
    ever ``shared``: a ``delete`` tells it to drop it. One that never was
    leaves no row at all, so the log keeps no trace a private event had,
    and a vendor hears nothing of it. (With the event gone, a ``delete``
    row says no more than that some event once shown is gone.) The
    position is taken either way, so the clock does not tell either."""
    seq = tick(session)
    if shared:
        _put_change(session, seq, customer_id, "history", event_id, DELETE)
    else:
        session.execute(
            delete(DataChange).where(
                col(DataChange.customer_id) == customer_id,
                col(DataChange.category) == "history",
                col(DataChange.record_id) == event_id,
            )
        )
    return seq


def grant_started(session: Session, *, vendor_id: str, grant_id: str, customer_id: str) -> int:
    """The vendor gets the customer's granted data whole at this position;
    the feed sends later changes from here on."""
    seq = tick(session)
    session.add(
        FeedNotice(
            seq=seq,
            vendor_id=vendor_id,
            grant_id=grant_id,
            customer_id=customer_id,
            kind="started",
            at=utcnow(),
        )
    )
    return seq


def grant_ended(
    session: Session,
    *,
    vendor_id: str,
    grant_id: str,
    customer_id: str,
    reason: str,
    fields: Iterable[str],
    dedupe_key: str | None = None,
) -> int | None:
    """A tombstone: the vendor must delete ``fields`` of the customer. With a
    ``dedupe_key``, a second call with the same key adds nothing (None)."""
    names = sorted(set(fields))
    if not names:
        return None
    # Position first: once it is ours, any other writer of the same key has
    # committed (the clock serialises us), so the check below sees it.
    seq = tick(session)
    if dedupe_key is not None:
        exists = session.execute(
            select(col(FeedNotice.seq)).where(col(FeedNotice.dedupe_key) == dedupe_key)
        ).first()
        if exists is not None:
            return None
    session.add(
        FeedNotice(
            seq=seq,
            vendor_id=vendor_id,
            grant_id=grant_id,
            kind="ended",
            reason=reason,
            customer_id=customer_id,
            fields=names,
            dedupe_key=dedupe_key,
            at=utcnow(),
        )
    )
    return seq


def grant_shortened(
    session: Session,
    *,
    vendor_id: str,
    grant_id: str,
    customer_id: str,
    fields: Iterable[str],
    expires_at: datetime,
) -> int:
    """The grant now ends at ``expires_at``: the vendor keeps ``fields``
    until then. Not a feed item (the expiry's tombstone comes when it is
    due); a revocation notice reads it (consent/notices)."""
    seq = tick(session)
    session.add(
        FeedNotice(
            seq=seq,
            vendor_id=vendor_id,
            grant_id=grant_id,
            kind="shortened",
            reason="shortened",
            customer_id=customer_id,
            fields=sorted(set(fields)),
            at=utcnow(),
            expires_at=expires_at,
        )
    )
    return seq


def forget_customer(
    session: Session, *, customer_id: str, subject_for: Callable[[str], str]
) -> None:
    """Before an account is erased: its tombstones keep only the pairwise
    subject each vendor knows (``subject_for(vendor_id)``); its started
    notices go (the feed skips those of a grant that ended, and they would
    keep when the customer dealt with whom)."""
    notices = session.execute(
        select(FeedNotice).where(col(FeedNotice.customer_id) == customer_id)
    ).scalars()
    for notice in notices:
        if notice.kind != "ended":
            session.delete(notice)
            continue
        notice.subject = subject_for(notice.vendor_id)
        notice.customer_id = None
        session.add(notice)
