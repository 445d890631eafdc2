"""How long the change log keeps what tells a vendor to delete, and what a
cursor older than that gets.

A ``delete`` row of the change log and an ``ended`` notice (a tombstone)
are how a vendor learns to drop its copy. They are purged once they are
``VRM_RETAIN_FEED_DELETIONS_SECONDS`` old (vrm/purge.py); a vendor that
resumes from a cursor older than one of them would otherwise never hear of
it, and keep data it must delete. So every purge raises the *horizon*,
the highest position it removed, in the same transaction as the delete,
and a cursor before the horizon is refused with 410 (:class:`CursorExpired`):
the vendor must resync from the start, which gives it only what it may
hold now.

The horizon is the second row of ``feed_clock`` (:data:`HORIZON_ROW`; the
first is the clock itself): a position beside the position, and no table
of its own. No row means nothing was ever purged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from vrm.errors import VRMError
from vrm.feed.changes import DELETE
from vrm.feed.cursor import Position
from vrm.feed.models import DataChange, FeedClock, FeedNotice

HORIZON_ROW = 2

EXPIRED = (
    "The cursor is older than the deletions this server keeps. Delete what you hold "
    "from this feed and read it again from the start, without a cursor."
)


class CursorExpired(VRMError):
    """410, as a sync token too old to resume from is elsewhere: the reader
    starts again without one."""

    status, slug, title = 410, "cursor-expired", "Cursor too old; resync from the start"


def deletions(before: datetime) -> ColumnElement[bool]:
    """The change log's ``delete`` rows written before ``before``."""
    return and_(col(DataChange.op) == DELETE, col(DataChange.at) < before)


def tombstones(before: datetime) -> ColumnElement[bool]:
    """The tombstones written before ``before``."""
    return and_(col(FeedNotice.kind).in_(("ended", "shortened")), col(FeedNotice.at) < before)


def raise_horizon(session: Session, seq: int) -> None:
    """Positions up to ``seq`` may have been purged. Part of the purging
    transaction, so a reader sees the rows or the horizon, never neither."""
    table = FeedClock.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(id=HORIZON_ROW, seq=seq)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"seq": stmt.excluded.seq},
            where=table.c.seq < stmt.excluded.seq,
        )
    )


def horizon(session: Session) -> int:
    """The highest position purged so far (0: none)."""
    found = session.execute(
        select(col(FeedClock.seq)).where(col(FeedClock.id) == HORIZON_ROW)
    ).scalar_one_or_none()
    return int(found or 0)


def check(session: Session, after: Position) -> None:
    """Refuse a cursor from before the horizon. Call it after reading the
    page: on SQLite each statement sees the latest commit, so a purge that
    took rows from under the page's read is seen here."""
    purged = horizon(session)
    # A position inside the horizon's own change (a grant id: more grants
    # at that position to come) may lack the rest of it too.
    if purged and (after.seq < purged or (after.seq == purged and after.grant_id)):
        raise CursorExpired(EXPIRED)
