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
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_
from sqlmodel import Session, col, select

from consent.grants import service as grants
from consent.grants.models import Grant
from vrm.catalogue import CATEGORIES
from vrm.db import read_snapshot
from vrm.dbtypes import utcnow
from vrm.errors import BadRequest, IntegrityFailure, KeyUnavailable
from vrm.feed import changes, paging, retention
from vrm.feed import cursor as cursors
from vrm.feed.cursor import Position
from vrm.feed.models import DataChange, FeedNotice
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.records.models import DocumentRecord
from vrm.vendor_api import accesses, events, projection
from vrm.vendor_api.edge import Reader

logger = logging.getLogger(__name__)

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


@dataclass
class _Entry:
    position: Position
    change: DataChange | None = None
    notice: FeedNotice | None = None


@dataclass
class _Reads:
    """What one page returned of one customer under one grant."""

    reader: Reader
    categories: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)


@dataclass
class _Item:
    """One item, and what of the customer's data it carries: recorded (as
    an access, or a log line) only if the item makes it onto the page, not
    when it was only looked at to tell whether there is more."""

    body: dict[str, Any]
    reads: _Reads | None = None
    categories: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    # Customer, problem slug, vendor: logged once the item is sent.
    unreadable: tuple[str, str, str] | None = None

    def record(self) -> None:
        if self.unreadable is not None:
            logger.error(
                "feed: a record of customer %s cannot be read (%s); "
                "vendor %s got an unreadable item",
                *self.unreadable,
            )
        if self.reads is not None:
            self.reads.categories.update(self.categories)
            self.reads.fields.update(self.fields)


@dataclass
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: str
    has_more: bool


def _after(seq_col: Any, grant_col: Any, after: Position) -> Any:
    if after.grant_id is None:
        return seq_col > after.seq
    return or_(seq_col > after.seq, and_(seq_col == after.seq, grant_col > after.grant_id))


def _entries(
    session: Session, vendor_id: str, after: Position, high: int, limit: int
) -> list[_Entry]:
    now = utcnow()
    data = session.exec(
        select(DataChange, Grant.id)
        .join(Grant, col(Grant.customer_id) == col(DataChange.customer_id))
        .where(
            Grant.vendor_id == vendor_id,
            col(Grant.revoked_at).is_(None),
            Grant.expires_at > now,
            col(DataChange.seq) > func.coalesce(Grant.feed_seq, 0),
            col(DataChange.seq) <= high,
            _after(col(DataChange.seq), col(Grant.id), after),
        )
        .order_by(col(DataChange.seq), col(Grant.id))
        .limit(limit)
    ).all()
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
    entries = [_Entry(Position(c.seq, gid), change=c) for c, gid in data]
    entries += [_Entry(Position(n.seq, n.grant_id), notice=n) for n in notices]
    # Change rows and notices never share a position (one clock), and a
    # change row's grants sort by id: (seq, grant id) is a total order.
    entries.sort(key=lambda e: (e.position.seq, e.position.grant_id or ""))
    return entries[:limit]


class _Page:
    """Builds one page's items, caching grants, subjects and readers."""

    def __init__(self, session: Session, vault: Vault, vendor_id: str) -> None:
        self.session = session
        self.vault = vault
        self.vendor_id = vendor_id
        self.grants: dict[str, Grant | None] = {}
        self.reads: dict[str, _Reads] = {}
        self.loaded: list[Any] = []
        self.history: dict[str, list[HistoryRecord]] = {}
        self.prefetched: set[str] = set()

    def load_grants(self, ids: set[str]) -> None:
        if ids:
            rows = self.session.exec(select(Grant).where(col(Grant.id).in_(ids))).all()
            self.grants.update({g.id: g for g in rows})

    def prefetch(self, entries: list[_Entry]) -> None:
        """Load the documents and data keys of a batch of entries in two
        queries; the per-record reads below then find them in the session."""
        starting = {
            g.customer_id
            for e in entries
            if e.notice is not None
            and e.notice.kind == "started"
            and (g := self.grants.get(e.notice.grant_id)) is not None
        }
        customers = starting | {e.change.customer_id for e in entries if e.change is not None}
        # A page is filled batch by batch: each customer's rows load once.
        ids = sorted(customers - self.prefetched)
        self.prefetched.update(ids)
        starting -= set(self.history)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            # Held here: the session's identity map only keeps weak references.
            self.loaded += self.session.exec(
                select(DataKey).where(col(DataKey.customer_id).in_(chunk))
            ).all()
            self.loaded += self.session.exec(
                select(DocumentRecord).where(col(DocumentRecord.customer_id).in_(chunk))
            ).all()
        # Snapshots read whole histories: one query for all of them.
        ids = sorted(starting)
        self.history.update({c: [] for c in ids})
        for start in range(0, len(ids), 500):
            rows = self.session.exec(
                select(HistoryRecord).where(
                    col(HistoryRecord.customer_id).in_(ids[start : start + 500])
                )
            ).all()
            for row in rows:
                self.history[row.customer_id].append(row)

    def reader(self, grant: Grant) -> _Reads:
        reads = self.reads.get(grant.id)
        if reads is None:
            reads = _Reads(
                Reader(
                    vendor_id=self.vendor_id,
                    customer_id=grant.customer_id,
                    grant_id=grant.id,
                    purpose=grant.purpose,
                    subject=pairwise_subject(self.vault, self.vendor_id, grant.customer_id),
                    accesses=grants.accesses_of(grant),
                )
            )
            self.reads[grant.id] = reads
        return reads

    def item(self, entry: _Entry) -> _Item | None:
        """The entry's item; for a record that cannot be read (its
        customer's key is missing or wrong) an ``unreadable`` item without
        data in its place, so one customer never stops everyone's feed."""
        try:
            return self._item(entry)
        except (KeyUnavailable, IntegrityFailure) as exc:
            return self._unreadable(entry, exc)

    def _unreadable(self, entry: _Entry, exc: KeyUnavailable | IntegrityFailure) -> _Item:
        # Only a started notice or a change of an active grant reads data.
        grant = self.grants[entry.position.grant_id or ""]
        assert grant is not None  # noqa: S101
        reads = self.reader(grant)
        item_id = f"{entry.position.seq}:{grant.id}"
        item = {**self._head(item_id, "unreadable", reads), "problem": exc.type_uri}
        if entry.change is not None:
            item = {**item, "skipped": "upsert", "category": entry.change.category}
        else:
            item = {**item, "skipped": "snapshot"}
        return _Item(item, unreadable=(grant.customer_id, exc.slug, self.vendor_id))

    def _item(self, entry: _Entry) -> _Item | None:
        if entry.notice is not None:
            return self._notice(entry.notice)
        assert entry.change is not None  # noqa: S101 - an entry is one or the other
        grant = self.grants.get(entry.position.grant_id or "")
        if grant is None or not grants.is_active(grant):
            return None
        return self._change(entry, entry.change, self.reader(grant))

    def _head(self, item_id: str, kind: str, reads: _Reads) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": kind,
            "subject": reads.reader.subject,
            "grant_id": reads.reader.grant_id,
        }

    def _notice(self, notice: FeedNotice) -> _Item | None:
        item_id = f"{notice.seq}:{notice.grant_id}"
        if notice.kind == "ended":
            subject = notice.subject
            if subject is None and notice.customer_id is not None:
                subject = pairwise_subject(self.vault, self.vendor_id, notice.customer_id)
            return _Item(
                {
                    "id": item_id,
                    "type": "tombstone",
                    "subject": subject,
                    "grant_id": notice.grant_id,
                    "reason": notice.reason,
                    "fields": notice.fields,
                }
            )
        grant = self.grants.get(notice.grant_id)
        if grant is None or not grants.is_active(grant):
            # It ended since; its tombstone comes later in the feed.
            return None
        reads = self.reader(grant)
        shown = projection.project(
            session=self.session,
            vault=self.vault,
            reader=reads.reader,
            categories=projection.readable_categories(reads.reader.accesses),
            history_rows=self.history.get(grant.customer_id),
        )
        data = {c: shown.body[c] for c in shown.categories}
        return _Item(
            {**self._head(item_id, "snapshot", reads), "purpose": grant.purpose, "data": data},
            reads,
            shown.categories,
            shown.fields,
        )

    def _change(self, entry: _Entry, change: DataChange, reads: _Reads) -> _Item | None:
        category = change.category
        granted = projection.granted_fields(reads.reader.accesses, category)
        if granted is None:
            return None
        item_id = f"{change.seq}:{reads.reader.grant_id}"
        customer_id = reads.reader.customer_id
        if CATEGORIES[category].kind != "events":
            document = records.read_fields(
                session=self.session, vault=self.vault, customer_id=customer_id, category=category
            )
            data = {f: document.get(f) for f in granted}
            return _Item(
                {**self._head(item_id, "upsert", reads), "category": category, "data": data},
                reads,
                [category],
                [f"{category}.{f}" for f in granted],
            )
        event = events.event_change(
            session=self.session, vault=self.vault, vendor_id=self.vendor_id, change=change
        )
        if event is None:
            return None
        if event.event is None:
            return _Item(
                {
                    **self._head(item_id, "delete", reads),
                    "category": category,
                    "event_id": event.dropped,
                }
            )
        return _Item(
            {**self._head(item_id, "upsert", reads), "category": category, "data": event.event},
            reads,
            [category],
            [category],
        )


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
    grants.expire_due(session, vendor_id=vendor_id)  # commits
    read_snapshot(session)
    high = changes.high_water(session)
    page = _Page(session, vault, vendor_id)

    def fetch(position: Position, n: int) -> list[_Entry]:
        entries = _entries(session, vendor_id, position, high, n)
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
    )
    session.commit()
    return FeedPage(items=items, next_cursor=given.encode(next_position), has_more=has_more)
