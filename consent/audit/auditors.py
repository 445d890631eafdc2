"""The audit API for auditors: the log's entries, filtered
(``GET /audit/v1/entries``). Customers appear only by pseudonym."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Connection, Select, or_, select
from sqlmodel import col

from consent.audit import entries, log, questions
from consent.audit.auditor_auth import AuditorDep
from consent.audit.customer import LoggedEntry, cursor_of, filtered
from consent.audit.events import family_hash
from consent.grants.models import Grant
from consent.oauth.models import OAuthToken
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
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
    query: Select[Any] = filtered(
        select(entry.c.idx, entry.c.body),
        kind=type,
        vendor=vendor,
        customer=customer,
        since=since,
        until=until,
    )
    start = cursor_of(cursor)
    if start is not None:
        query = query.where(entry.c.idx >= start)
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


# -- the questions (consent/audit/questions.py) ---------------------------------


def _of_vendor(conn: Connection, vendor: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """The vendor's entries in log order (the index on vendor and index)."""
    entry = log.ENTRY
    rows = conn.execute(
        select(entry.c.idx, entry.c.body).where(entry.c.vendor_id == vendor).order_by(entry.c.idx)
    )
    for idx, body in rows:
        yield idx, entries.parse(body)


VendorQuery = Annotated[str, Query(max_length=64, description="The vendor's client id.")]


class GrantsHeld(BaseModel):
    vendor: str
    at: datetime
    grants: list[dict[str, Any]]


@router.get("/questions/grants-held")
def grants_held(
    _auditor: AuditorDep, session: SessionDep, vendor: VendorQuery, at: AwareDatetime
) -> GrantsHeld:
    """Which grants the vendor held at ``at``, with their scopes, purpose
    and expiry, and the consent entries each rests on."""
    held = questions.grants_held(_of_vendor(session.connection(), vendor), at)
    return GrantsHeld(vendor=vendor, at=at, grants=[asdict(g) for g in held])


class Limitation(BaseModel):
    vendor: str
    # Entries checked against their grants; the violations must be none.
    checked: list[int]
    unchecked: list[int]
    violations: list[dict[str, Any]]


@router.get("/questions/purpose-limitation")
def purpose_limitation(
    _auditor: AuditorDep, session: SessionDep, vendor: VendorQuery
) -> Limitation:
    """Every read and deposit of the vendor checked against its grant: a
    read outside a valid grant, its purpose or its fields is a violation
    (there must be none)."""
    found = questions.purpose_limitation(_of_vendor(session.connection(), vendor))
    return Limitation(vendor=vendor, **asdict(found))


class Withdrawals(BaseModel):
    vendor: str
    withdrawals: list[dict[str, Any]]


@router.get("/questions/withdrawals")
def withdrawals(_auditor: AuditorDep, session: SessionDep, vendor: VendorQuery) -> Withdrawals:
    """Every grant of the vendor's revoked, expired or narrowed, with each
    read of what it withdrew after it (there must be none), and how long
    the vendor took to acknowledge the notice (once notices exist)."""
    found = questions.withdrawals(_of_vendor(session.connection(), vendor))
    return Withdrawals(vendor=vendor, withdrawals=[asdict(w) for w in found])


class LiveTokens(BaseModel):
    # Token families, by the hash the log names them by, still usable
    # under a grant that is revoked or expired (there must be none).
    families: list[dict[str, Any]]


@router.get("/questions/live-tokens-of-ended-grants")
def live_tokens(_auditor: AuditorDep, session: SessionDep) -> LiveTokens:
    """Token families not revoked and not expired whose grant was revoked or
    has expired: the token endpoint refuses them anyway, since every use
    checks the grant; this shows that the tokens were ended too."""
    now = utcnow()
    token, grant = OAuthToken, Grant
    rows = (
        session.connection()
        .execute(
            select(col(token.grant_id), col(token.family_id), col(token.vendor_id))
            .join(grant, col(grant.id) == col(token.grant_id))
            .where(
                col(token.revoked_at).is_(None),
                or_(col(token.expires_at) > now, col(token.refresh_expires_at) > now),
                or_(col(grant.revoked_at).is_not(None), col(grant.expires_at) <= now),
            )
            .distinct()
        )
        .all()
    )
    return LiveTokens(
        families=[{"grant": g, "family": family_hash(f), "vendor": v} for g, f, v in rows]
    )
