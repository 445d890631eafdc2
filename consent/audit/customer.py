"""What the log says about one customer, for that customer: every read of
their data and every consent and token change, filterable and paged
(``GET /api/v1/me/access-log``); each entry as a receipt with the proof
that a signed checkpoint covers it and the opening of its commitment, so
the customer can show anyone that the operator committed to it; and the
log in their export (docs/audit.md#the-customers-view).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Connection, Select, select

from consent.audit import entries, log, merkle, tree
from consent.audit.entries import Event
from vrm.accounts.models import Customer
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import CurrentCustomer, VaultDep
from vrm.errors import BadRequest, Conflict, NotFound, ValidationFailed, problems
from vrm.export.service import Section, Source
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault

router = APIRouter(prefix="/api/v1/me", tags=["audit"])

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
# What a ``type`` filter may name: a whole type or its family.
FAMILIES = frozenset(t.split(".")[0] for t in entries.TYPES)


class LoggedEntry(BaseModel):
    index: int
    entry: dict[str, Any]


class AccessLog(BaseModel):
    items: list[LoggedEntry]
    # Give it back as ``cursor`` for the next (older) page; None at the end.
    next_cursor: str | None


class Receipt(BaseModel):
    """An entry with what proves it: that it is leaf ``index`` of the tree
    the checkpoint signs (RFC 9162 inclusion proof, base64 hashes), and
    what it commits to, with the salt that opens the commitment."""

    index: int
    entry: str
    leaf_hash: str
    size: int
    proof: list[str]
    checkpoint: str
    salt: str
    personal: dict[str, Any]


def _query(
    pseudonym: str,
    *,
    vendor: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    before: int | None,
) -> Select[Any]:
    """The customer's entries, newest first, filtered."""
    entry = log.ENTRY
    mine = select(entry.c.idx, entry.c.body).where(entry.c.customer == pseudonym)
    query: Select[Any] = filtered(mine, kind=kind, vendor=vendor, since=since, until=until)
    if before is not None:
        query = query.where(entry.c.idx < before)
    return query.order_by(entry.c.idx.desc())


def filtered(
    query: Any,
    *,
    kind: str | None = None,
    vendor: str | None = None,
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """``query`` (a Select) of entries, kept to a ``kind`` (a family such as ``data``,
    or a whole type), a vendor, a customer's pseudonym and a period (since
    inclusive, until exclusive): the filters of the customer's access log
    and of the auditors' entries."""
    entry = log.ENTRY
    if kind is not None:
        if kind in entries.TYPES:
            query = query.where(entry.c.type == kind)
        elif kind in FAMILIES:
            query = query.where(entry.c.type.startswith(kind + "."))
        else:
            raise ValidationFailed(f"type must be one of {', '.join(sorted(FAMILIES))} or a type.")
    if vendor is not None:
        query = query.where(entry.c.vendor_id == vendor)
    if customer is not None:
        query = query.where(entry.c.customer == customer)
    if since is not None:
        query = query.where(entry.c.at >= since)
    if until is not None:
        query = query.where(entry.c.at < until)
    return query


def cursor_of(cursor: str | None) -> int | None:
    """The entry index a cursor this server gave out names."""
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise BadRequest("The cursor is not one this server gave out.")
    return int(cursor)


@router.get("/access-log", responses=problems(BadRequest, ValidationFailed))
def access_log(
    customer: CurrentCustomer,
    session: SessionDep,
    vendor: Annotated[str | None, Query(max_length=64)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AccessLog:
    """Every entry of the audit log about you, newest first: which vendor
    read which fields when and for what purpose, every consent change and
    every token issued or revoked. Filter by ``vendor`` (client id),
    ``type`` (``data``, ``consent``, ``token``, ... or a whole type such as
    ``data.read``) and period (``since`` inclusive, ``until`` exclusive)."""
    return page_of(
        session.connection(),
        customer,
        vendor=vendor,
        kind=type,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )


def page_of(
    conn: Connection,
    customer: Customer,
    *,
    vendor: str | None,
    kind: str | None,
    since: datetime | None,
    until: datetime | None,
    cursor: str | None,
    limit: int,
) -> AccessLog:
    """One page of the customer's entries, newest first, filtered: the
    access log's answer, for the API and the customer's web page alike."""
    query = _query(
        entries.pseudonym(customer.audit_salt),
        vendor=vendor,
        kind=kind,
        since=since,
        until=until,
        before=cursor_of(cursor),
    )
    rows = conn.execute(query.limit(limit + 1)).all()
    items = [LoggedEntry(index=idx, entry=entries.parse(body)) for idx, body in rows[:limit]]
    more = len(rows) > limit
    return AccessLog(items=items, next_cursor=str(items[-1].index) if more else None)


def last_read(conn: Connection, customer: Customer, vendor: str, grant: str) -> datetime | None:
    """When ``vendor`` last read the customer's data under ``grant``,
    from the log (the reads of the vendor's other grants skipped)."""
    query = _query(
        entries.pseudonym(customer.audit_salt),
        vendor=vendor,
        kind="data.read",
        since=None,
        until=None,
        before=None,
    )
    for _idx, body in conn.execute(query):
        entry = entries.parse(body)
        if entry.get("grant") == grant:
            return datetime.fromisoformat(entry["at"])
    return None


def read_times(
    conn: Connection,
    customer: Customer,
    *,
    vendor: str | None,
    since: datetime,
    until: datetime,
) -> list[tuple[str, datetime]]:
    """Each vendor read of the customer's data in the period (``since``
    inclusive, ``until`` exclusive): the vendor and the time, oldest first,
    from the same filters as the access log."""
    entry = log.ENTRY
    mine = select(entry.c.vendor_id, entry.c.at).where(
        entry.c.customer == entries.pseudonym(customer.audit_salt)
    )
    query = filtered(mine, kind="data.read", vendor=vendor, since=since, until=until)
    return [(v, at) for v, at in conn.execute(query.order_by(entry.c.idx))]


def _personal(vault: Vault, customer: Customer, entry: dict[str, Any]) -> dict[str, Any]:
    """What the entry committed to (consent/audit/events.py): the account
    id, and for a read or deposit the subject the vendor knows them by."""
    personal: dict[str, Any] = {"customer_id": customer.id}
    if entry["type"].startswith("data."):
        personal["subject"] = pairwise_subject(vault, entry["vendor"], customer.id)
    return personal


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@router.get("/access-log/{index}/receipt", responses=problems(NotFound, Conflict))
def receipt(index: int, customer: CurrentCustomer, session: SessionDep, vault: VaultDep) -> Receipt:
    """Entry ``index`` about you, with the inclusion proof in the latest
    signed checkpoint and the salt and values its commitment opens to:
    proof, to anyone, of what the operator committed to."""
    return receipt_of(session.connection(), vault, customer, index)


def receipt_of(conn: Connection, vault: Vault, customer: Customer, index: int) -> Receipt:
    """The receipt of entry ``index`` about ``customer``: NotFound for an
    entry not about them, Conflict until a signed checkpoint covers it."""
    entry = log.ENTRY
    row = conn.execute(
        select(entry.c.body, entry.c.leaf_hash).where(
            entry.c.idx == index, entry.c.customer == entries.pseudonym(customer.audit_salt)
        )
    ).first()
    if row is None:
        raise NotFound("No such entry about you.")
    body, leaf = row
    signed = tree.latest(conn)
    if signed is None or signed.size <= index:
        raise Conflict("No signed checkpoint covers this entry yet; ask again in a few seconds.")
    parsed = entries.parse(body)
    personal = _personal(vault, customer, parsed)
    if entries.commitment(customer.audit_salt, personal) != parsed.get("commitment"):
        raise Conflict("This entry's commitment cannot be opened any more.")
    proof = merkle.inclusion_proof_from(tree.StoredHashes(conn, signed.size), index, signed.size)
    return Receipt(
        index=index,
        entry=body.decode(),
        leaf_hash=_b64(leaf),
        size=signed.size,
        proof=[_b64(h) for h in proof],
        checkpoint=tree.note_with_cosignatures(conn, signed),
        salt=customer.audit_salt.hex(),
        personal=personal,
    )


def _audit_log(source: Source) -> list[dict[str, Any]]:
    """The export's ``audit_log``: the export itself is logged first, so
    the customer's copy shows it."""
    conn: Connection = source.session.connection()
    customer = source.customer
    log.append(conn, [Event(type="account.exported", at=utcnow(), customer_id=customer.id)])
    query = _query(
        entries.pseudonym(customer.audit_salt),
        vendor=None,
        kind=None,
        since=None,
        until=None,
        before=None,
    )
    return [
        {"index": idx, "entry": entries.parse(body)}
        for idx, body in conn.execute(query.order_by(None).order_by(log.ENTRY.c.idx))
    ]


SECTIONS: dict[str, Section] = {"audit_log": _audit_log}
