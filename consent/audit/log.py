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

from collections.abc import Sequence

from sqlalchemy import Connection, Table, bindparam, insert, select, update

from consent.audit import entries
from consent.audit.entries import EntryError, Event
from consent.audit.merkle import leaf_hash
from consent.audit.models import AuditEntry, AuditHead
from vrm.accounts.models import Customer
from vrm.storage.batches import batches
from vrm.storage.statements import Statement

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
# One customer's, on the driver's cursor: every vendor read appends one
# entry about one customer (vrm/vendor_api/accesses.py).
_SALT = Statement(select(_CUSTOMER.c.audit_salt).where(_CUSTOMER.c.id == bindparam("id")))


def _salt_of_one(conn: Connection, customer_ids: set[str]) -> dict[str, bytes]:
    (customer_id,) = customer_ids
    row = _SALT.first(conn, {"id": customer_id})
    if row is None:
        raise EntryError("no such customer to log an entry about")
    return {customer_id: row[0]}


def salts_of(conn: Connection, customer_ids: set[str]) -> dict[str, bytes]:
    """The audit salts of the customers, a few hundred per statement: a feed
    page records reads of a thousand customers."""
    found: dict[str, bytes] = {}
    for batch in batches(customer_ids):
        rows = conn.execute(
            select(_CUSTOMER.c.id, _CUSTOMER.c.audit_salt).where(_CUSTOMER.c.id.in_(batch))
        )
        found.update((customer_id, salt) for customer_id, salt in rows)
    missing = customer_ids - found.keys()
    if missing:
        raise EntryError("no such customer to log an entry about")
    return found


def append(conn: Connection, events: Sequence[Event]) -> int:
    """Append an entry for each event, in order; the index of the first.
    The caller commits, with the change the events record."""
    if not events:
        raise EntryError("nothing to append")
    about = {event.customer_id for event in events if event.customer_id is not None}
    salts = _salt_of_one(conn, about) if len(about) == 1 else salts_of(conn, about)
    rows = []
    for event in events:
        salt = salts[event.customer_id] if event.customer_id is not None else None
        body = entries.body(event, salt)
        rows.append(
            {
                "at": event.at,
                "type": event.type,
                "customer": entries.pseudonym(salt) if salt is not None else None,
                "vendor_id": event.vendor_id,
                "body": body,
                "leaf_hash": leaf_hash(body),
            }
        )
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


def size(conn: Connection) -> int:
    """How many entries are committed (as this transaction sees it)."""
    found = conn.execute(select(HEAD.c.size).where(HEAD.c.id == 1)).scalar_one_or_none()
    return int(found or 0)
