"""Connected vendors: each grant in words, narrowed, shortened or revoked
through the services the API's grant routes call (consent/grants/routes.py:
``revocation.narrow``, ``revocation.revoke``, committed as they commit), and
what the vendor sees under it today, projected by the vendor API's own
``project`` without recording a read: it is the customer looking.

A grant of another customer is a 404 on every path, before its form is
read: nothing about it is shown or changed."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from client.web import words
from client.web.auth import CSRF_FIELD, FORM_EXPIRED, PageCustomer, PageCustomerDep
from client.web.render import render
from consent.audit import customer as audit_log
from consent.grants import revocation, service
from consent.grants.models import Grant
from consent.grants.routes import public
from consent.pages import FormError, PageFormDep, form_fields, form_list
from consent.policy import Access, parse_scope, readable_categories
from consent.vendors.models import Vendor
from vrm.catalogue import CATEGORIES
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import VaultDep
from vrm.errors import NotFound, ValidationFailed
from vrm.keys.service import Vault
from vrm.vendor_api import edge, projection

router = APIRouter(include_in_schema=False)

# The earlier end dates offered, in days from now; a date field offers any.
DURATIONS = (1, 7, 30, 90, 180, 365)
_NOT_SENT = "The form was not filled in correctly: {}."


def choices(grant: Grant) -> list[tuple[str, str]]:
    """What can be kept of a grant, one box a field: a whole document
    category (``profile:read``) is offered field by field, so any of its
    fields can be taken back; the history is shared whole."""
    out = []
    for access in service.accesses_of(grant):
        for part in _parts(access):
            out.append((part.scope, part.describe()))
    return out


def _parts(access: Access) -> list[Access]:
    category = CATEGORIES[access.category]
    if access.field is not None or category.kind != "document":
        return [access]
    return [Access(access.category, f, access.action) for f in category.fields]


def kept_scopes(grant: Grant, ticked: list[str]) -> list[str]:
    """The scopes to narrow the grant to: what was ticked, a whole category
    kept whole when every one of its fields is (so keeping everything
    changes nothing). Whether that is a narrowing, the service decides."""
    wanted = set(ticked)
    out = []
    for access in service.accesses_of(grant):
        parts = {p.scope for p in _parts(access)}
        if access.field is None and len(parts) > 1 and parts <= wanted:
            out.append(access.scope)
            wanted -= parts
    return out + sorted(wanted)


def _mine(session: Session, who: PageCustomer, grant_id: str) -> Grant | None:
    try:
        return service.get_for_customer(session, who.customer.id, grant_id)
    except NotFound:
        return None


def _not_found(who: PageCustomer) -> Response:
    return render(
        "message.html",
        path="/vendors",
        logout_csrf=who.logout_csrf,
        heading="No such connection",
        message="You have no connection to a vendor at this address.",
        back=("/vendors", "Your connected vendors"),
        status=404,
    )


def described(session: Session, who: PageCustomer, grant: Grant) -> dict[str, Any]:
    """Everything the pages say about one grant, from the API's own view of
    it (``consent.grants.routes.public``) and the log's last read."""
    seen = public(session, grant)
    vendor = session.get(Vendor, grant.vendor_id)
    last = audit_log.last_read(session.connection(), who.customer, grant.vendor_id, grant.id)
    return {
        "id": grant.id,
        "vendor_id": grant.vendor_id,
        "name": seen.vendor.name,
        "name_now": seen.vendor_now.name if seen.vendor_now else None,
        "changed": seen.vendor_changed,
        "policy": words.link(seen.vendor.policy_uri),
        "unreviewed": vendor is not None and vendor.registered_by == "dynamic",
        "what": seen.described,
        "openid": seen.openid,
        "why": seen.purpose_described,
        "since": words.when(seen.created_at),
        "until": words.when(seen.revoked_at or seen.expires_at),
        "last_read": words.when(last) if last else "Never",
        "status": seen.status,
        "ended_by": words.ended_by(seen.revoked_by),
        "active": seen.status == "active",
        "server_reads": service.server_reads(
            service.accesses_of(grant) if seen.status == "active" else [],
            customer_held=who.customer.root_by_password is not None,
            ending="while it lasts" if seen.status == "active" else "for it",
        ),
    }


@router.get("/vendors")
def vendors_page(who: PageCustomerDep, session: SessionDep) -> Response:
    grants = service.list_for_customer(session, who.customer.id)
    return render(
        "vendors.html",
        path="/vendors",
        logout_csrf=who.logout_csrf,
        grants=[described(session, who, g) for g in grants],
    )


def _detail(
    session: Session,
    who: PageCustomer,
    grant: Grant,
    *,
    notice: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    ticked: list[str] | None = None,
    until: str = "",
    on_date: str = "",
    status: int = 200,
) -> Response:
    now = utcnow()
    base = f"/vendors/{grant.id}"
    return render(
        "vendor.html",
        path="/vendors",
        logout_csrf=who.logout_csrf,
        grant=described(session, who, grant),
        choices=choices(grant),
        ticked=ticked if ticked is not None else [s for s, _ in choices(grant)],
        durations=[
            (
                str(d),
                f"{d} day{'s' if d != 1 else ''} from now, {words.when(now + timedelta(days=d))}",
            )
            for d in DURATIONS
            if now + timedelta(days=d) < grant.expires_at
        ],
        until=until,
        on_date=on_date,
        narrow_csrf=who.csrf(f"{base}/narrow"),
        shorten_csrf=who.csrf(f"{base}/shorten"),
        notice=notice,
        error=error,
        field_errors=field_errors or {},
        status=status,
    )


_DONE = {
    "narrowed": "Done: the vendor can no longer read what you unticked, from its next request.",
    "shortened": "Done: the vendor's access now ends earlier.",
    "unchanged": "Nothing changed: you kept everything.",
    "revoked": "Done: the vendor can no longer read anything of yours.",
}


@router.get("/vendors/{grant_id}")
def vendor_page(
    grant_id: str, who: PageCustomerDep, session: SessionDep, done: str = ""
) -> Response:
    grant = _mine(session, who, grant_id)
    if grant is None:
        return _not_found(who)
    return _detail(session, who, grant, notice=_DONE.get(done, ""))


@router.post("/vendors/{grant_id}/narrow")
def narrow(
    grant_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep, form: PageFormDep
) -> Response:
    grant = _mine(session, who, grant_id)
    if grant is None:
        return _not_found(who)
    try:
        sent = form_fields(form, CSRF_FIELD)
        ticked = form_list(form, "keep", max_items=64, max_length=100)
    except FormError as exc:
        return _detail(session, who, grant, error=_NOT_SENT.format(exc.message), status=400)
    if not who.csrf_ok(f"/vendors/{grant.id}/narrow", sent["csrf"]):
        return _detail(session, who, grant, error=FORM_EXPIRED, ticked=ticked, status=403)
    before = list(grant.scopes)
    try:
        revocation.narrow(session, vault, grant, scopes=kept_scopes(grant, ticked), expires_at=None)
    except ValidationFailed as exc:
        session.rollback()
        message = f"Nothing was changed: {exc.detail or exc.title}"
        return _detail(
            session,
            who,
            grant,
            error=message,
            field_errors={"keep": message},
            ticked=ticked,
            status=422,
        )
    session.commit()
    done = "unchanged" if grant.scopes == before else "narrowed"
    return RedirectResponse(f"/vendors/{grant.id}?done={done}", status_code=303)


def _new_end(until: str, on_date: str) -> tuple[datetime | None, dict[str, str]]:
    """The end the form chose: a period from now, or the end of a day (UTC)."""
    if until and on_date:
        return None, {"until": "Choose a period or a date, not both."}
    if on_date:
        try:
            day = date.fromisoformat(on_date)
        except ValueError:
            return None, {"on_date": "End date: is not a date (year-month-day)."}
        return datetime.combine(day + timedelta(days=1), time(), UTC), {}
    if until:
        if not until.isdigit() or int(until) not in DURATIONS:
            return None, {"until": "New end: choose one of the periods offered."}
        return utcnow() + timedelta(days=int(until)), {}
    return None, {"until": "New end: choose a period or a date."}


@router.post("/vendors/{grant_id}/shorten")
def shorten(
    grant_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep, form: PageFormDep
) -> Response:
    grant = _mine(session, who, grant_id)
    if grant is None:
        return _not_found(who)
    try:
        sent = form_fields(form, {**CSRF_FIELD, "until": 10, "on_date": 10})
    except FormError as exc:
        return _detail(session, who, grant, error=_NOT_SENT.format(exc.message), status=400)
    until, on_date = sent["until"], sent["on_date"]
    if not who.csrf_ok(f"/vendors/{grant.id}/shorten", sent["csrf"]):
        return _detail(
            session, who, grant, error=FORM_EXPIRED, status=403, until=until, on_date=on_date
        )
    end, problems = _new_end(until, on_date)
    if end is not None:
        try:
            revocation.narrow(session, vault, grant, scopes=None, expires_at=end)
        except ValidationFailed as exc:
            session.rollback()
            problems = {"on_date" if on_date else "until": exc.detail or exc.title}
    if problems:
        return _detail(
            session,
            who,
            grant,
            error="Nothing was changed. Please correct the form.",
            field_errors=problems,
            status=422,
            until=until,
            on_date=on_date,
        )
    session.commit()
    return RedirectResponse(f"/vendors/{grant.id}?done=shortened", status_code=303)


def _revoke_page(
    session: Session, who: PageCustomer, grant: Grant, *, error: str = "", status: int = 200
) -> Response:
    return render(
        "revoke.html",
        path="/vendors",
        logout_csrf=who.logout_csrf,
        grant=described(session, who, grant),
        csrf=who.csrf(f"/vendors/{grant.id}/revoke"),
        error=error,
        status=status,
    )


@router.get("/vendors/{grant_id}/revoke")
def revoke_page(grant_id: str, who: PageCustomerDep, session: SessionDep) -> Response:
    grant = _mine(session, who, grant_id)
    if grant is None:
        return _not_found(who)
    return _revoke_page(session, who, grant)


@router.post("/vendors/{grant_id}/revoke")
def revoke(
    grant_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep, form: PageFormDep
) -> Response:
    grant = _mine(session, who, grant_id)
    if grant is None:
        return _not_found(who)
    try:
        sent = form_fields(form, CSRF_FIELD)
    except FormError as exc:
        return _revoke_page(session, who, grant, error=_NOT_SENT.format(exc.message), status=400)
    if not who.csrf_ok(f"/vendors/{grant.id}/revoke", sent["csrf"]):
        return _revoke_page(session, who, grant, error=FORM_EXPIRED, status=403)
    revocation.revoke(session, vault, grant, by="customer")
    session.commit()
    return RedirectResponse(f"/vendors/{grant.id}?done=revoked", status_code=303)


def seen_by_vendor(session: Session, vault: Vault, grant: Grant) -> dict[str, Any] | None:
    """What the vendor's ``GET /v1/data`` answers under ``grant`` now, as
    JSON values (None when the grant is not active: it reads nothing).
    Projected exactly as the vendor API projects it; no access event and no
    log entry are written."""
    if not service.is_active(grant):
        return None
    reader = edge.reader_of_grant(vault, grant)
    shown = projection.project(
        session=session,
        vault=vault,
        reader=reader,
        categories=readable_categories(reader.accesses),
    )
    body: dict[str, Any] = json.loads(shown.json)
    return body


def _labelled(category: str, values: dict[str, Any]) -> list[tuple[str, Any]]:
    """The fields in the catalogue's order (the JSON's is alphabetical), in
    the policy's words."""
    return [
        (parse_scope(f"{category}.{name}:read").words.capitalize(), values[name])
        for name in CATEGORIES[category].fields
        if name in values
    ]


@router.get("/vendors/{grant_id}/sees")
def sees_page(
    grant_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep
) -> Response:
    grant = _mine(session, who, grant_id)
    if grant is None:
        return _not_found(who)
    body = seen_by_vendor(session, vault, grant)
    documents = []
    history = None
    if body is not None:
        for category in CATEGORIES:
            if category not in body:
                continue
            if CATEGORIES[category].kind == "events":
                history = body[category]
            else:
                documents.append((category, _labelled(category, body[category])))
    return render(
        "sees.html",
        path="/vendors",
        logout_csrf=who.logout_csrf,
        grant=described(session, who, grant),
        body=body,
        documents=documents,
        history=history,
        raw=json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False),
    )
