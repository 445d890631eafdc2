"""Access history: every entry of the audit log about the customer, newest
first, paged and filtered as the API's ``/api/v1/me/access-log`` pages and
filters it (``consent.audit.customer.page_of``), a chart of each vendor's
reads over the period (client/web/chart.py), and each entry's receipt, the
API's own (``receipt_of``), as a download.

The filter is a GET form: it changes nothing, so it carries no CSRF token,
and a filtered page can be bookmarked. Its values are checked here and a
wrong one is said in words, never a problem+json."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.responses import Response

from client.web import chart, words
from client.web.auth import PageCustomer, PageCustomerDep
from client.web.render import render
from consent.audit import customer as audit_log
from consent.grants import service as grants
from consent.vendors.models import Vendor
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import VaultDep
from vrm.errors import BadRequest, Conflict, NotFound

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# The chart's period when none is chosen, and the longest one drawn.
DEFAULT_DAYS = 30
MAX_DAYS = 2 * 366
_LIMITS = {"vendor": 64, "since": 10, "until": 10, "cursor": 32}


def _names(session: Session, ids: set[str]) -> dict[str, str]:
    """Each vendor's name as it calls itself now (untrusted text: the
    templates escape it)."""
    out = {}
    for vendor_id in sorted(ids):
        vendor = session.get(Vendor, vendor_id)
        out[vendor_id] = vendor.name if vendor is not None else "A vendor no longer registered"
    return out


def _day(value: str, label: str, problems: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems[label] = f"{label.capitalize()}: is not a date (year-month-day)."
        return None


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


@router.get("/access")
def access_page(request: Request, who: PageCustomerDep, session: SessionDep) -> Response:
    query = {name: request.query_params.get(name, "")[:limit] for name, limit in _LIMITS.items()}
    mine = {g.vendor_id for g in grants.list_for_customer(session, who.customer.id)}
    problems: dict[str, str] = {}
    vendor = query["vendor"] or None
    if vendor is not None and vendor not in mine:
        problems["vendor"] = "Vendor: choose one from the list."
        vendor = None
    since = _day(query["since"], "since", problems)
    until = _day(query["until"], "until", problems)
    if since and until and until < since:
        problems["until"] = "Until: the period ends before it starts."
        until = None
    cursor = query["cursor"] or None
    notice = ""
    try:
        audit_log.cursor_of(cursor)
    except BadRequest:
        notice = "That page link is not one this site gave out, so here is the first page."
        cursor = None
    today = utcnow().date()
    last = until or today
    first = since or (last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        first = last
    if (last - first).days >= MAX_DAYS:
        first = last - timedelta(days=MAX_DAYS - 1)
        notice = " ".join(
            [
                notice,
                f"The charts show at most {MAX_DAYS} days, so they start on {words.day(first)}.",
            ]
        ).strip()

    conn = session.connection()
    log = audit_log.page_of(
        conn,
        who.customer,
        vendor=vendor,
        kind=None,
        since=_start(since) if since else None,
        until=_start(until + timedelta(days=1)) if until else None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    names = _names(session, mine | {i.entry["vendor"] for i in log.items if "vendor" in i.entry})
    times: dict[str, list[datetime]] = defaultdict(list)
    for vendor_id, at in audit_log.read_times(
        conn, who.customer, vendor=vendor, since=_start(first), until=_start(last + timedelta(1))
    ):
        times[vendor_id].append(at)
    charted = sorted({vendor} if vendor else mine | set(times), key=lambda v: names.get(v, v))
    charts = [
        {
            "name": names.get(v, v),
            "svg": chart.svg(
                names.get(v, v), chart.bars(times[v], first, last), ident=f"chart-{n}"
            ),
            "reads": len(times[v]),
        }
        for n, v in enumerate(charted)
    ]
    filters = {"vendor": vendor or "", "since": query["since"], "until": query["until"]}
    kept = {k: v for k, v in filters.items() if v and k not in problems}
    newest = "/access" + (f"?{urlencode(kept)}" if kept else "")
    more = None
    if log.next_cursor is not None:
        more = "/access?" + urlencode({**kept, "cursor": log.next_cursor})
    return render(
        "access.html",
        path="/access",
        logout_csrf=who.logout_csrf,
        vendors=sorted(((v, names[v]) for v in mine), key=lambda pair: pair[1]),
        filters=filters,
        period=(words.day(first), words.day(last)),
        charts=charts,
        entries=[{"index": i.index, **words.entry(i.entry, names)} for i in log.items],
        first_page=cursor is None,
        newest=newest,
        more=more,
        notice=notice,
        error="Please correct the filter." if problems else "",
        field_errors=problems,
    )


def _receipt_problem(who: PageCustomer, heading: str, message: str, status: int) -> Response:
    return render(
        "message.html",
        path="/access",
        logout_csrf=who.logout_csrf,
        heading=heading,
        message=message,
        back=("/access", "Your access history"),
        status=status,
    )


@router.get("/access/{index}/receipt")
def receipt(index: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep) -> Response:
    """The API's receipt (``/api/v1/me/access-log/{index}/receipt``), as a file."""
    missing = ("No such entry", "Your access history has no entry at this address.", 404)
    if not index.isdigit() or len(index) > 19:
        return _receipt_problem(who, *missing)
    try:
        found = audit_log.receipt_of(session.connection(), vault, who.customer, int(index))
    except NotFound:
        return _receipt_problem(who, *missing)
    except Conflict as exc:
        # The log is signed every few seconds; until then no receipt proves
        # the entry (the API's 409, in the service's words).
        return _receipt_problem(who, "Receipt not available", exc.detail or exc.title, 409)
    return Response(
        found.model_dump_json(),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="receipt-{int(index)}.json"',
            "Cache-Control": "no-store",
        },
    )
