"""Which change-log rows and notices one page of a vendor's feed reads.

The feed (vrm/vendor_api/feed.py) walks two tables in one order: the
change log's rows of every customer with an active grant of the vendor,
after the position where that grant started, and the vendor's notices
(grant started, grant ended). Both take their positions from one clock, so
(sequence, grant id) orders them totally, and a cursor names a place in
that order (vrm/feed/cursor.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from consent.grants.models import Grant
from vrm.dbtypes import utcnow
from vrm.feed.cursor import Position
from vrm.feed.models import DataChange, FeedNotice


@dataclass
class Entry:
    position: Position
    change: DataChange | None = None
    notice: FeedNotice | None = None


def _after(seq_col: Any, grant_col: Any, after: Position) -> Any:
    if after.grant_id is None:
        return seq_col > after.seq
    # The range first, for the index on seq, then the exact place in it: an
    # OR alone bounds no index scan, and on stale statistics the planner
    # scanned the log's whole range once per grant
    # (docs/performance.md#the-feeds-cursor).
    return and_(
        seq_col >= after.seq,
        or_(seq_col > after.seq, and_(seq_col == after.seq, grant_col > after.grant_id)),
    )


def read_entries(
    session: Session, vendor_id: str, after: Position, high: int, limit: int
) -> list[Entry]:
    """Up to ``limit`` entries after ``after`` and none past ``high``, in
    feed order."""
    notices = session.exec(
        select(FeedNotice)
        .where(
            FeedNotice.vendor_id == vendor_id,
            col(FeedNotice.seq) <= high,
            _after(col(FeedNotice.seq), col(FeedNotice.grant_id), after),
        )
        .order_by(col(FeedNotice.seq))
        .limit(limit)
    ).all()
    # A full page of notices ends the page where they end: no change row
    # after the last of them can make it in, so the join walks only the log
    # up to there (a first sync's pages are all snapshots).
    last = notices[-1].seq if len(notices) == limit else high
    now = utcnow()
    data = session.exec(
        select(DataChange, Grant.id)
        .join(Grant, col(Grant.customer_id) == col(DataChange.customer_id))
        .where(
            Grant.vendor_id == vendor_id,
            col(Grant.revoked_at).is_(None),
            Grant.expires_at > now,
            col(DataChange.seq) > func.coalesce(Grant.feed_seq, 0),
            col(DataChange.seq) <= last,
            _after(col(DataChange.seq), col(Grant.id), after),
        )
        .order_by(col(DataChange.seq), col(Grant.id))
        .limit(limit)
    ).all()
    entries = [Entry(Position(c.seq, gid), change=c) for c, gid in data]
    entries += [Entry(Position(n.seq, n.grant_id), notice=n) for n in notices]
    # Change rows and notices never share a position (one clock), and a
    # change row's grants sort by id: (seq, grant id) is a total order.
    entries.sort(key=lambda e: (e.position.seq, e.position.grant_id or ""))
    return entries[:limit]
