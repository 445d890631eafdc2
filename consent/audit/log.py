"""Appending to the log, in the transaction of the change it records.

:func:`append` runs on the connection of the change's own transaction, so
the change and its entry commit together or not at all. It first adds to
the log's size (``audit_head``): on PostgreSQL that row's lock, and on
SQLite the database's write lock, is then held until the transaction ends,
so appenders take turns and each gets the next indexes with no gap; an
append rolled back gives its indexes back before anyone else takes them.

Work in a group commit (vrm/storage/groupcommit.py) that appends declares
:data:`WRITES` beside its own tables; its entries join the group's commit.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Connection, Table, bindparam, insert, select, text, update

from consent.audit import entries
from consent.audit.entries import EntryError, Event
from consent.audit.merkle import leaf_hash
from consent.audit.models import AuditEntry, AuditHead
from vrm.accounts.models import Customer
from vrm.storage import groupcommit
from vrm.storage.statements import ManyKeys, Statement
from vrm.storage.transaction import check_write

HEAD: Table = AuditHead.__table__  # type: ignore[attr-defined]
ENTRY: Table = AuditEntry.__table__  # type: ignore[attr-defined]
_CUSTOMER: Table = Customer.__table__  # type: ignore[attr-defined]

# What appending writes, for work in a group commit to declare.
WRITES = frozenset({HEAD, ENTRY})

_GROW = Statement(
    update(HEAD)
    .where(HEAD.c.id == 1)
    .values(size=HEAD.c.size + bindparam("count"))
    .returning(HEAD.c.size)
)
_INSERT = Statement(insert(ENTRY))
# On PostgreSQL both in one statement, one round trip for a group's entries
# instead of two (docs/performance.md#the-audit-log): the head grows once
# (a data-modifying WITH runs exactly once) and the entries, given as one
# array per column, take the indexes that follow the old size. The arrays
# go in binary: in text, psycopg's Python writes them value by value (bytes
# escaped one by one), which cost more than the statement did the server.
_GROW_AND_INSERT = Statement(
    text(
        """
WITH grown AS (
    UPDATE audit_head SET size = size + :count WHERE id = 1 RETURNING size
)
INSERT INTO audit_entry (idx, at, type, customer, vendor_id, body, leaf_hash)
SELECT grown.size - :count + given.n - 1, given.at, given.type, given.customer,
       given.vendor_id, given.body, given.leaf_hash
FROM grown, unnest(
    CAST(:at AS timestamptz[]), CAST(:type AS varchar[]), CAST(:customer AS varchar[]),
    CAST(:vendor_id AS varchar[]), CAST(:body AS bytea[]), CAST(:leaf_hash AS bytea[])
) WITH ORDINALITY AS given(at, type, customer, vendor_id, body, leaf_hash, n)
RETURNING idx
"""
    ),
    binary=True,
)
_COLUMNS = ("at", "type", "customer", "vendor_id", "body", "leaf_hash")
# One customer's, on the driver's cursor: every vendor read appends one
# entry about one customer (vrm/vendor_api/accesses.py).
_SALT = Statement(select(_CUSTOMER.c.audit_salt).where(_CUSTOMER.c.id == bindparam("id")))
_SALTS_OF = ManyKeys(select(_CUSTOMER.c.id, _CUSTOMER.c.audit_salt), _CUSTOMER.c.id)


class _Salts:
    """Customers' audit salts and pseudonyms, kept in this process for a
    minute (as the vault keeps keys, ``VRM_KEY_CACHE_SECONDS``' default), up
    to :attr:`SIZE` of them: every vendor read appends an entry about its
    customer, and reading the salt each time cost a statement. An erasure
    in this process forgets the customer's at once; in another, nothing is
    appended about an erased customer (no grant, token or session is left)
    and the salt goes within the minute."""

    SECONDS = 60.0
    SIZE = 100_000

    def __init__(self) -> None:
        self._kept: OrderedDict[str, tuple[float, bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, customer_id: str) -> tuple[bytes, str] | None:
        found = self._kept.get(customer_id)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1], found[2]

    def put(self, customer_id: str, salt: bytes) -> tuple[bytes, str]:
        named = salt, entries.pseudonym(salt)
        with self._lock:
            self._kept[customer_id] = (time.monotonic() + self.SECONDS, *named)
            self._kept.move_to_end(customer_id)
            while len(self._kept) > self.SIZE:
                self._kept.popitem(last=False)
        return named

    def forget(self, customer_id: str) -> None:
        with self._lock:
            self._kept.pop(customer_id, None)


SALTS = _Salts()


def _salt_of_one(conn: Connection, customer_id: str) -> dict[str, bytes]:
    row = _SALT.first(conn, {"id": customer_id})
    if row is None:
        raise EntryError("no such customer to log an entry about")
    return {customer_id: row[0]}


def salts_of(conn: Connection, customer_ids: set[str]) -> dict[str, bytes]:
    """The audit salts of the customers, in one query (ManyKeys,
    vrm/storage/statements.py): a feed page records reads of a thousand
    customers."""
    found: dict[str, bytes] = dict(_SALTS_OF.rows(conn, customer_ids))
    missing = customer_ids - found.keys()
    if missing:
        raise EntryError("no such customer to log an entry about")
    return found


def _named(conn: Connection, customer_ids: set[str]) -> dict[str, tuple[bytes, str]]:
    """Each customer's salt and pseudonym, from :data:`SALTS` or read."""
    named: dict[str, tuple[bytes, str]] = {}
    missing: set[str] = set()
    for customer_id in customer_ids:
        found = SALTS.get(customer_id)
        if found is None:
            missing.add(customer_id)
        else:
            named[customer_id] = found
    if missing:
        read = _salt_of_one(conn, *missing) if len(missing) == 1 else salts_of(conn, missing)
        for customer_id, salt in read.items():
            named[customer_id] = SALTS.put(customer_id, salt)
    return named


def append(conn: Connection, events: Sequence[Event]) -> int | None:
    """Append an entry for each event, in order; the index of the first.
    The caller commits, with the change the events record. In a group
    commit the entries join the group's (vrm.storage.groupcommit.defer),
    written together as it commits: None then."""
    if not events:
        raise EntryError("nothing to append")
    if groupcommit.defer(conn, _append_deferred, events):
        return None
    return _append(conn, events)


def _append_deferred(conn: Connection, groups: list[Sequence[Event]]) -> None:
    _append(conn, [event for events in groups for event in events])


def _append(conn: Connection, events: Sequence[Event]) -> int:
    about = {event.customer_id for event in events if event.customer_id is not None}
    named = _named(conn, about) if about else {}
    rows = []
    for event in events:
        salt, pseudonym = (
            named[event.customer_id] if event.customer_id is not None else (None, None)
        )
        body = entries.body(event, salt, pseudonym)
        rows.append(
            {
                "at": event.at,
                "type": event.type,
                "customer": pseudonym,
                "vendor_id": event.vendor_id,
                "body": body,
                "leaf_hash": leaf_hash(body),
            }
        )
    if conn.dialect.name == "postgresql":
        return _grow_and_insert(conn, rows)
    grown = _GROW.first(conn, {"count": len(rows)})
    if grown is None:
        raise RuntimeError("the audit log's head row is missing (migration 0013)")
    first = int(grown[0]) - len(rows)
    for offset, row in enumerate(rows):
        row["idx"] = first + offset
    if len(rows) == 1:
        _INSERT.execute(conn, rows[0])
    else:
        _INSERT.execute_many(conn, rows)
    return first


def _grow_and_insert(conn: Connection, rows: list[dict[str, object]]) -> int:
    check_write(conn.info, HEAD)
    check_write(conn.info, ENTRY)
    params: dict[str, object] = {name: [row[name] for row in rows] for name in _COLUMNS}
    params["count"] = len(rows)
    indexes = _GROW_AND_INSERT.rows(conn, params)
    if len(indexes) != len(rows):
        raise RuntimeError("the audit log's head row is missing (migration 0013)")
    return min(int(index) for (index,) in indexes)


def size(conn: Connection) -> int:
    """How many entries are committed (as this transaction sees it)."""
    found = conn.execute(select(HEAD.c.size).where(HEAD.c.id == 1)).scalar_one_or_none()
    return int(found or 0)
