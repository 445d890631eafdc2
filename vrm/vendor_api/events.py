"""What a vendor hears of the customer's history events as they change:
the one rule (:func:`event_change`) that the feed (vrm/vendor_api/feed.py)
and incremental history reads (``/v1/data/history?since=``) both follow.

The change log cannot tell a private event from another (see
:func:`vrm.feed.changes.touch_event`), so each row's event is opened to
decide, and pages are filled with what the vendor may see
(vrm/feed/paging.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from vrm.errors import BadRequest
from vrm.feed import changes, paging, retention
from vrm.feed import cursor as cursors
from vrm.feed.models import DataChange
from vrm.history import service as history
from vrm.keys.pairwise import pairwise_event_id
from vrm.keys.service import Vault
from vrm.vendor_api import projection
from vrm.vendor_api.edge import Reader

MAX_HISTORY_LIMIT = 200
DEFAULT_HISTORY_LIMIT = 100


@dataclass(frozen=True)
class EventChange:
    """What one change of a history event tells a vendor: the event as it
    may see it, or the pairwise id of an event to drop."""

    event: projection.Raw | None = None
    dropped: str | None = None


def event_change(
    *, vault: Vault, vendor_id: str, change: DataChange, now: projection.ShownEvent | None
) -> EventChange | None:
    """The one rule for what a vendor hears of a change-log row of a
    history event, given the event as the vendor may see it now (None if it
    is gone; see :func:`shown_now`). The log cannot say whether the event is
    private (see vrm/feed/changes.py, touch_event): the event as it is now
    decides. None: nothing at all, for an event private all along (no vendor
    was ever shown it, so none hears of it, not even its id), or one deleted
    after this read began (its later position says so)."""
    if change.op == changes.DELETE:
        return EventChange(dropped=pairwise_event_id(vault, vendor_id, change.record_id))
    if now is None:
        return None
    if now.json is not None:
        return EventChange(event=projection.Raw(now.json))
    if now.shared:
        return EventChange(dropped=pairwise_event_id(vault, vendor_id, change.record_id))
    return None


def shown_now(
    session: Session, vault: Vault, vendor_id: str, rows: Sequence[DataChange]
) -> dict[str, projection.ShownEvent]:
    """The history events that the PUT rows among ``rows`` name, as the
    vendor may see them now, by event id: two queries for them all (their
    rows, and the ciphertext of those not in the vault's memory)."""
    puts = {
        r.record_id: r.customer_id
        for r in rows
        if r.category == history.CATEGORY and r.op == changes.PUT
    }
    stamps = [
        stamp
        for stamp in history.stamps_by_id(session.connection(), puts).values()
        # Event ids are unique, but a log row only ever speaks for its customer.
        if puts[stamp.id] == stamp.customer_id
    ]
    shown = projection.shown_events(session, vault, vendor_id, stamps)
    return {stamp.id: now for stamp, now in zip(stamps, shown, strict=True)}


def history_changes(
    *, session: Session, vault: Vault, reader: Reader, since: str | None, limit: int
) -> projection.Projection:
    """The customer's history events changed after ``since``, in the order
    they changed: events to add or replace, and the ids of events the vendor
    must drop (deleted, or labelled ``private`` since). Without ``since``,
    every event there is now. ``next_cursor`` resumes after this page.
    ``limit`` counts what the page holds, so its size tells nothing of
    what the vendor may not see (vrm/feed/paging.py)."""
    if not 1 <= limit <= MAX_HISTORY_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_HISTORY_LIMIT}.")
    given = cursors.for_history(vault, reader.vendor_id, reader.grant_id)
    after = given.decode(since) if since else None
    high = changes.high_water(session)
    query = select(DataChange).where(
        DataChange.customer_id == reader.customer_id,
        DataChange.category == history.CATEGORY,
        col(DataChange.seq) <= high,
    )
    if after is None:
        # Every event there is now: a withdrawn one is simply absent.
        query = query.where(DataChange.op == changes.PUT)

    current: dict[str, projection.ShownEvent] = {}

    def fetch(seq: int, n: int) -> list[DataChange]:
        rows = query.where(col(DataChange.seq) > seq).order_by(col(DataChange.seq)).limit(n)
        found = list(session.exec(rows).all())
        current.update(shown_now(session, vault, reader.vendor_id, found))
        return found

    def produce(row: DataChange) -> EventChange | None:
        change = event_change(
            vault=vault, vendor_id=reader.vendor_id, change=row, now=current.get(row.record_id)
        )
        if change is not None and after is None and change.event is None:
            return None
        return change

    found = paging.fill(
        fetch=fetch,
        key=lambda row: row.seq,
        produce=produce,
        after=after.seq if after is not None else 0,
        want=limit + 1,
    )
    if after is not None:
        retention.check(session, after)  # after the read, as the feed does
    has_more = len(found) > limit
    found = found[:limit]
    events = [c.event for _, c in found if c.event is not None]
    dropped = [c.dropped for _, c in found if c.dropped is not None]
    if has_more:
        next_position = cursors.Position(found[-1][0].seq)
    else:
        start = after.seq if after is not None else 0
        next_position = cursors.Position(max(high, start))
    body: dict[str, Any] = {
        "subject": reader.subject,
        "grant_id": reader.grant_id,
        "purpose": reader.purpose,
        "history": events,
        "deleted": dropped,
        "next_cursor": given.encode(next_position),
        "has_more": has_more,
    }
    return projection.Projection(
        body=body, categories=[history.CATEGORY], fields=[history.CATEGORY]
    )
