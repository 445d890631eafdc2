"""The record of each vendor read and deposit: one access_event row naming
what was returned, never values."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Connection, Table, insert

from consent.audit import events as audit
from consent.audit import log as audit_log
from consent.audit.entries import Event
from vrm.dbtypes import utcnow
from vrm.storage.statements import ManyRows, Statement
from vrm.vendor_api.edge import Reader
from vrm.vendor_api.models import AccessEvent


def new_event_id() -> str:
    return uuid.uuid4().hex


def access_row(
    reader: Reader,
    categories: list[str],
    fields: list[str],
    *,
    action: str = "read",
    not_modified: bool = False,
) -> dict[str, Any]:
    """One read (or deposit) of one customer's data, as an access_event row:
    names of what was returned, never values."""
    return {
        "id": new_event_id(),
        "at": utcnow(),
        "vendor_id": reader.vendor_id,
        "grant_id": reader.grant_id,
        "subject": reader.subject,
        "customer_id": reader.customer_id,
        "purpose": reader.purpose,
        "categories": categories,
        "fields": fields,
        "not_modified": not_modified,
        "action": action,
    }


# On the driver's cursor (vrm/storage/statements.py): this runs on every
# read, and the ORM's unit of work, or even a Core execution, cost more than
# the insert.
ACCESS_EVENT: Table = AccessEvent.__table__  # type: ignore[attr-defined]
_INSERT_ACCESS = Statement(insert(ACCESS_EVENT))
_INSERT_ACCESSES = ManyRows(ACCESS_EVENT)
# What recording a read in a group commit writes (vrm/storage/groupcommit.py):
# the access events and their entries on the audit log.
WRITES = frozenset({ACCESS_EVENT}) | audit_log.WRITES


def add_accesses(conn: Connection, rows: list[dict[str, Any]], *, via: str) -> None:
    """Insert access events (from :func:`access_row`), and append each to
    the audit log; ``via`` names the way in (``data``, ``feed``,
    ``deposit``). The caller commits, before answering."""
    if not rows:
        return
    if len(rows) == 1:
        _INSERT_ACCESS.execute(conn, rows[0])
    else:
        _INSERT_ACCESSES.insert(conn, rows)
    audit_log.append(conn, [_entry(row, via) for row in rows])


def _entry(row: dict[str, Any], via: str) -> Event:
    return audit.data_access(
        action=row["action"],
        at=row["at"],
        customer_id=row["customer_id"],
        vendor_id=row["vendor_id"],
        grant_id=row["grant_id"],
        subject=row["subject"],
        purpose=row["purpose"],
        categories=row["categories"],
        fields=row["fields"],
        via=via,
        not_modified=row["not_modified"],
    )
