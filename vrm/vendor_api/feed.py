"""``/v1/feed``: every change a vendor may see, across all its customers.

The feed is the change log (vrm/feed) seen through the vendor's grants:
changes of customers with an active grant, after the position where that
grant started, each projected to that grant; a snapshot of the granted data
where a grant starts; a tombstone where one ends or shrinks. Items carry
pairwise subjects and event ids only.

Each page reads up to the log's high-water mark, taken first: every
position up to it has committed (see vrm/feed/models.py), so a cursor never
skips a change that commits later. Items are computed from the records as
they are when the page is read; a record written again has moved to a later
position, so an item's id (position and grant) always names the same
content, and delivering it twice is harmless. ``limit`` counts items, not
log rows: a row that gives the vendor nothing (a private event among them)
takes no place on a page (vrm/feed/paging.py).

Which log rows and notices a page reads is chosen in
vrm/vendor_api/feed_entries.py, each becomes an item under its grant in
vrm/vendor_api/feed_items.py, and here they are assembled into a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from consent.grants import revocation
from vrm.catalogue import CATEGORIES
from vrm.db import read_snapshot
from vrm.errors import BadRequest
from vrm.feed import changes, paging, retention
from vrm.feed import cursor as cursors
from vrm.feed.cursor import Position
from vrm.keys.service import Vault
from vrm.vendor_api import accesses
from vrm.vendor_api.feed_entries import Entry, read_entries
from vrm.vendor_api.feed_items import Page

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def read(
    *, session: Session, vault: Vault, vendor_id: str, cursor: str | None, limit: int
) -> FeedPage:
    """One page of the vendor's feed after ``cursor`` (from the start when
    None). Records an access event per customer and grant whose data the
    page carries, and commits them, before returning."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}.")
    given = cursors.for_feed(vault, vendor_id)
    after = given.decode(cursor) if cursor else cursors.START
    revocation.expire_due(session, vault, vendor_id=vendor_id)  # commits
    read_snapshot(session)
    high = changes.high_water(session)
    page = Page(session, vault, vendor_id)

    def fetch(position: Position, n: int) -> list[Entry]:
        entries = read_entries(session, vendor_id, position, high, n)
        page.load_grants({e.position.grant_id for e in entries if e.position.grant_id})
        page.prefetch(entries)
        return entries

    found = paging.fill(
        fetch=fetch, key=lambda e: e.position, produce=page.item, after=after, want=limit + 1
    )
    if cursor:
        # After the read: a purge that took rows from under it is seen.
        retention.check(session, after)
    has_more = len(found) > limit
    found = found[:limit]
    for _, item in found:
        item.record()
    items = [item.body for _, item in found]
    if has_more:
        next_position = found[-1][0].position
    else:
        # Everything up to the high-water mark is read; resume after it.
        next_position = Position(high) if high >= after.seq else after
    # The snapshot ends here: on PostgreSQL a REPEATABLE READ transaction
    # cannot take its turn at the audit log's head once another append has
    # committed since it began (vrm.db.read_snapshot).
    session.commit()
    # One statement for the page's access events (one per customer and
    # grant whose data it carries): a thousand single inserts cost more
    # than the page's reads.
    accesses.add_accesses(
        session.connection(),
        [
            accesses.access_row(
                reads.reader,
                [c for c in CATEGORIES if c in reads.categories],
                sorted(reads.fields),
            )
            for reads in page.reads.values()
            if reads.fields
        ],
        via="feed",
    )
    session.commit()
    return FeedPage(items=items, next_cursor=given.encode(next_position), has_more=has_more)
