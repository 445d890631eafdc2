"""The audit API for auditors: the log's entries, filtered
(``GET /audit/v1/entries``). Customers appear only by pseudonym."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select

from consent.audit import entries, log
from consent.audit.auditor_auth import AuditorDep
from consent.audit.customer import FAMILIES, LoggedEntry
from vrm.db import SessionDep
from vrm.errors import ValidationFailed, problems

router = APIRouter(prefix="/audit/v1", tags=["audit"])

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


class Entries(BaseModel):
    items: list[LoggedEntry]
    # Give it back as ``cursor`` for the next page; None at the end.
    next_cursor: str | None


@router.get("/entries", responses=problems(ValidationFailed))
def list_entries(
    _auditor: AuditorDep,
    session: SessionDep,
    type: Annotated[str | None, Query(max_length=32)] = None,
    vendor: Annotated[str | None, Query(max_length=64)] = None,
    customer: Annotated[str | None, Query(max_length=32)] = None,
    purpose: Annotated[str | None, Query(max_length=100)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Entries:
    """The log's entries in order, oldest first. Filters: ``type`` (a
    family such as ``data`` or a whole type), ``vendor`` (client id),
    ``customer`` (a pseudonym), ``purpose``, and period (``since``
    inclusive, ``until`` exclusive)."""
    entry = log.ENTRY
    query = select(entry.c.idx, entry.c.body)
    if type is not None:
        if type in entries.TYPES:
            query = query.where(entry.c.type == type)
        elif type in FAMILIES:
            query = query.where(entry.c.type.startswith(type + "."))
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
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 19:
            raise ValidationFailed("cursor is not one this server gave out.")
        query = query.where(entry.c.idx >= int(cursor))
    # The purpose is a member of the body only: filtered here, a page at a
    # time, so a page may hold fewer than ``limit`` entries.
    rows = session.connection().execute(query.order_by(entry.c.idx).limit(limit + 1)).all()
    more = len(rows) > limit
    items: list[LoggedEntry] = []
    for idx, body in rows[:limit]:
        parsed: dict[str, Any] = entries.parse(body)
        if purpose is None or parsed.get("purpose") == purpose:
            items.append(LoggedEntry(index=idx, entry=parsed))
    return Entries(items=items, next_cursor=str(rows[limit][0]) if more else None)
