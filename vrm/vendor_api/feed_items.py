"""The items of a vendor's feed: each log row or notice projected to the
grant it is read under (vrm/vendor_api/feed.py assembles them into pages).

A change becomes an ``upsert`` or ``delete`` of the granted fields, a
started grant a ``snapshot`` of the granted data, an ended or narrowed one
a ``tombstone``; a record that cannot be read becomes an ``unreadable``
item, so one customer's broken key never stops everyone's feed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlmodel import Session, col

from consent import policy
from consent.grants import service as grants
from consent.grants.models import Grant
from consent.policy import Access
from vrm.catalogue import CATEGORIES
from vrm.errors import IntegrityFailure, KeyUnavailable
from vrm.feed.models import DataChange, FeedNotice
from vrm.history import service as history
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.storage.statements import ManyKeys
from vrm.vendor_api import events, projection
from vrm.vendor_api.edge import Reader
from vrm.vendor_api.feed_entries import Entry

logger = logging.getLogger(__name__)


class GrantRow(NamedTuple):
    """What an item needs of its grant, read without the ORM: a page reads
    a thousand grants, and only reads them."""

    id: str
    customer_id: str
    purpose: str
    scopes: list[str]
    revoked_at: datetime | None
    expires_at: datetime


_GRANT_ROWS = ManyKeys(
    select(
        col(Grant.id),
        col(Grant.customer_id),
        col(Grant.purpose),
        col(Grant.scopes),
        col(Grant.revoked_at),
        col(Grant.expires_at),
    ),
    col(Grant.id),
)


@dataclass
class Reads:
    """What one page returned of one customer under one grant; ``readable``
    is the categories the grant may read (consent/policy.py), ``keys`` the
    data keys that opens them (consent.grants.service.escrowed_keys)."""

    reader: Reader
    readable: list[str]
    keys: frozenset[str]
    categories: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)


@dataclass
class Item:
    """One item, and what of the customer's data it carries: recorded (as
    an access, or a log line) only if the item makes it onto the page, not
    when it was only looked at to tell whether there is more."""

    body: dict[str, Any]
    reads: Reads | None = None
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


class Page:
    """Builds one page's items, caching grants, subjects and readers."""

    def __init__(self, session: Session, vault: Vault, vendor_id: str) -> None:
        self.session = session
        # The read's one transaction's (asking the session costs as much as
        # a document's decryption, once per item).
        self.conn = session.connection()
        self.vault = vault
        self.vendor_id = vendor_id
        self.grants: dict[str, GrantRow | None] = {}
        self.reads: dict[str, Reads] = {}
        # What the policy allows, once per distinct set of scopes: grants
        # of one vendor mostly share theirs.
        self.allowed: dict[tuple[str, ...], tuple[list[Access], list[str], frozenset[str]]] = {}
        # Each prefetched customer's sealed documents.
        self.documents: dict[str, records.SealedDocuments] = {}
        self.history = history.SealedHistories()
        self.prefetched: set[str] = set()
        # The events that change rows name, as they are now.
        self.events: dict[str, projection.ShownEvent] = {}
        self.failed: dict[str, KeyUnavailable | IntegrityFailure] = {}

    def load_grants(self, ids: set[str]) -> None:
        rows = _GRANT_ROWS.rows(self.conn, ids)
        self.grants.update((row[0], GrantRow(*row)) for row in rows)

    def prefetch(self, entries: list[Entry]) -> None:
        """Read what a batch of entries needs in a few queries, not a few
        per customer: their customers' sealed documents, the data keys the
        batch's grants read (unwrapped into the vault's cache), the events
        that change rows name and the whole histories that snapshots read."""
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
        conn = self.conn
        self.documents.update(records.sealed_documents_of(conn, ids))
        read = {
            category
            for e in entries
            if (g := self.grants.get(e.position.grant_id or "")) is not None
            for category in self.reader(g).keys
        }
        self.vault.remember_keys(conn, ids, read)
        # The history events of changes whose grant reads the history.
        self._shown_now(
            [
                e.change
                for e in entries
                if e.change is not None
                and e.change.category == history.CATEGORY
                and (g := self.grants.get(e.position.grant_id or "")) is not None
                and policy.fields_of(self.reader(g).reader.accesses, history.CATEGORY) is not None
            ]
        )
        # Snapshots read whole histories: one query for all of them.
        self.history.read(conn, starting)

    def _shown_now(self, rows: list[DataChange]) -> None:
        """The events the change rows name, as the vendor may see them now,
        customer by customer: one whose key cannot open them gets an
        ``unreadable`` item in their place (see :meth:`item`), not a failed
        page."""
        by_customer: dict[str, list[DataChange]] = {}
        for row in rows:
            by_customer.setdefault(row.customer_id, []).append(row)
        for customer_id, theirs in by_customer.items():
            try:
                self.events.update(
                    events.shown_now(self.session, self.vault, self.vendor_id, theirs)
                )
            except (KeyUnavailable, IntegrityFailure) as exc:
                self.failed[customer_id] = exc

    def reader(self, grant: GrantRow) -> Reads:
        reads = self.reads.get(grant.id)
        if reads is None:
            scopes = tuple(grant.scopes)
            allowed = self.allowed.get(scopes)
            if allowed is None:
                accesses = grants.accesses_of(grant)
                allowed = self.allowed[scopes] = (
                    accesses,
                    policy.readable_categories(accesses),
                    frozenset(grants.escrowed_keys(accesses)),
                )
            reads = Reads(
                Reader(
                    vendor_id=self.vendor_id,
                    customer_id=grant.customer_id,
                    grant_id=grant.id,
                    purpose=grant.purpose,
                    subject=pairwise_subject(self.vault, self.vendor_id, grant.customer_id),
                    accesses=allowed[0],
                ),
                allowed[1],
                allowed[2],
            )
            self.reads[grant.id] = reads
        return reads

    def item(self, entry: Entry) -> Item | None:
        """The entry's item; for a record that cannot be read (its
        customer's key is missing or wrong) an ``unreadable`` item without
        data in its place, so one customer never stops everyone's feed."""
        try:
            return self._item(entry)
        except (KeyUnavailable, IntegrityFailure) as exc:
            return self._unreadable(entry, exc)

    def _unreadable(self, entry: Entry, exc: KeyUnavailable | IntegrityFailure) -> Item:
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
        return Item(item, unreadable=(grant.customer_id, exc.slug, self.vendor_id))

    def _item(self, entry: Entry) -> Item | None:
        if entry.notice is not None:
            return self._notice(entry.notice)
        assert entry.change is not None  # noqa: S101 - an entry is one or the other
        grant = self.grants.get(entry.position.grant_id or "")
        if grant is None or not grants.is_active(grant):
            return None
        return self._change(entry, entry.change, self.reader(grant))

    def _documents(self, reads: Reads, categories: list[str]) -> dict[str, dict[str, Any]]:
        """The customer's documents of those of ``categories`` that are
        documents, opened from what :meth:`prefetch` read: of the fields
        the grant reads only."""
        wanted = [c for c in categories if CATEGORIES[c].kind != "events"]
        customer_id = reads.reader.customer_id
        return records.read_fields_of(
            conn=self.conn,
            vault=self.vault,
            customer_id=customer_id,
            categories=wanted,
            fields={c: policy.fields_of(reads.reader.accesses, c) or () for c in wanted},
            sealed=self.documents.get(customer_id),
        )

    def _head(self, item_id: str, kind: str, reads: Reads) -> dict[str, Any]:
        return {
            "id": item_id,
            "type": kind,
            "subject": reads.reader.subject,
            "grant_id": reads.reader.grant_id,
        }

    def _notice(self, notice: FeedNotice) -> Item | None:
        item_id = f"{notice.seq}:{notice.grant_id}"
        if notice.kind == "shortened":
            return None  # for revocation notices only: the expiry comes later
        if notice.kind == "ended":
            subject = notice.subject
            if subject is None and notice.customer_id is not None:
                subject = pairwise_subject(self.vault, self.vendor_id, notice.customer_id)
            return Item(
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
        categories = reads.readable
        shown = projection.project(
            session=self.session,
            vault=self.vault,
            reader=reads.reader,
            categories=categories,
            history_rows=self.history.of(grant.customer_id),
            documents=self._documents(reads, categories),
        )
        data = {c: shown.body[c] for c in shown.categories}
        return Item(
            {**self._head(item_id, "snapshot", reads), "purpose": grant.purpose, "data": data},
            reads,
            shown.categories,
            shown.fields,
        )

    def _change(self, entry: Entry, change: DataChange, reads: Reads) -> Item | None:
        category = change.category
        granted = policy.fields_of(reads.reader.accesses, category)
        if granted is None:
            return None
        item_id = f"{change.seq}:{reads.reader.grant_id}"
        customer_id = reads.reader.customer_id
        if CATEGORIES[category].kind != "events":
            document = self._documents(reads, [category])[category]
            data = {f: document.get(f) for f in granted}
            return Item(
                {**self._head(item_id, "upsert", reads), "category": category, "data": data},
                reads,
                [category],
                [f"{category}.{f}" for f in granted],
            )
        if customer_id in self.failed:
            raise self.failed[customer_id]
        event = events.event_change(
            vault=self.vault,
            vendor_id=self.vendor_id,
            change=change,
            now=self.events.get(change.record_id),
        )
        if event is None:
            return None
        if event.event is None:
            return Item(
                {
                    **self._head(item_id, "delete", reads),
                    "category": category,
                    "event_id": event.dropped,
                }
            )
        return Item(
            {**self._head(item_id, "upsert", reads), "category": category, "data": event.event},
            reads,
            [category],
            [category],
        )
