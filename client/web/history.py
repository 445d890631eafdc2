"""The history pages: a page of events at a time, newest first; add one,
change it (labels included), delete it. Through the service functions the
API's history routes call; an event id of another customer is simply not
found there, as through the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from sqlmodel import Session
from starlette.responses import RedirectResponse, Response

from client.web import events
from client.web.auth import FORM_EXPIRED, PageCustomer, PageCustomerDep
from client.web.labels import LABELS, NAMES
from client.web.render import render
from consent.pages import FormError, PageFormDep, form_fields
from vrm.db import SessionDep
from vrm.deps import VaultDep
from vrm.errors import BadRequest, NotFound, PreconditionFailed, ValidationFailed
from vrm.history import service as history
from vrm.history.models import HistoryFilter, HistoryPage
from vrm.history.service import EventView
from vrm.keys.service import Vault

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
_DONE = {
    "added": "The event was added.",
    "saved": "The event was saved.",
    "deleted": "The event was deleted.",
}
_NOT_SENT = "The form was not filled in correctly: {}."


@router.get("/data/history")
def history_page(
    who: PageCustomerDep,
    session: SessionDep,
    vault: VaultDep,
    cursor: str | None = None,
    done: str | None = None,
) -> Response:
    error = ""
    try:
        page = _page(session, vault, who, cursor)
    except BadRequest:
        error = "That page link is not one this site gave out; here are your newest events."
        page, cursor = _page(session, vault, who, None), None
    return render(
        "history.html",
        path="/data/history",
        logout_csrf=who.logout_csrf,
        events=page.items,
        next_cursor=page.next_cursor,
        first=cursor is None,
        notice=_DONE.get(done or "", ""),
        error=error,
        status=400 if error else 200,
        label_names=NAMES,
    )


def _page(session: Session, vault: Vault, who: PageCustomer, cursor: str | None) -> HistoryPage:
    return history.list_events(
        session=session,
        vault=vault,
        customer_id=who.customer.id,
        filters=HistoryFilter(),
        cursor=cursor,
        limit=PAGE_SIZE,
    )


def _form_page(
    who: PageCustomer,
    *,
    action: str,
    values: dict[str, Any],
    etag: str = "",
    error: str = "",
    field_errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    adding = action == "/data/history/new"
    return render(
        "event.html",
        path="/data/history",
        logout_csrf=who.logout_csrf,
        csrf=who.csrf(action),
        delete_csrf=None if adding else who.csrf(f"{action}/delete"),
        heading="Add an event" if adding else "Change an event",
        action=action,
        values=values,
        etag=etag,
        types=events.TYPES,
        channels=events.CHANNELS,
        ratings=events.RATINGS,
        labels=LABELS,
        error=error,
        field_errors=field_errors or {},
        status=status,
    )


@router.get("/data/history/new")
def new_page(who: PageCustomerDep) -> Response:
    return _form_page(who, action="/data/history/new", values=events.blank(3))


@router.post("/data/history/new")
def new_submit(
    who: PageCustomerDep, session: SessionDep, vault: VaultDep, data: PageFormDep
) -> Response:
    action = "/data/history/new"
    try:
        values = events.typed(data)
        csrf = form_fields(data, {"csrf": 200})["csrf"]
    except FormError as exc:
        return _form_page(
            who,
            action=action,
            values=events.blank(3),
            error=_NOT_SENT.format(exc.message),
            status=400,
        )
    if not who.csrf_ok(action, csrf):
        return _form_page(who, action=action, values=values, error=FORM_EXPIRED, status=403)
    try:
        event = events.new_event(values)
    except ValidationError as exc:
        return _form_page(
            who,
            action=action,
            values=values,
            error="Nothing was added. Please correct the fields below.",
            field_errors=events.messages(exc, values),
            status=422,
        )
    history.add_event(
        session=session, vault=vault, customer_id=who.customer.id, event=event, source="customer"
    )
    return RedirectResponse("/data/history?done=added", status_code=303)


def _event(session: Session, vault: Vault, who: PageCustomer, event_id: str) -> EventView | None:
    try:
        return history.get_event(
            session=session, vault=vault, customer_id=who.customer.id, event_id=event_id
        )
    except NotFound:
        return None


def _not_found(who: PageCustomer) -> Response:
    return render(
        "not_found.html",
        path="/data/history",
        logout_csrf=who.logout_csrf,
        status=404,
    )


@router.get("/data/history/{event_id}")
def event_page(
    event_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep
) -> Response:
    view = _event(session, vault, who, event_id)
    if view is None:
        return _not_found(who)
    return _form_page(
        who,
        action=f"/data/history/{event_id}",
        values=events.shown(view.event),
        etag=view.etag,
    )


@router.post("/data/history/{event_id}")
def event_submit(
    event_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep, data: PageFormDep
) -> Response:
    action = f"/data/history/{event_id}"
    view = _event(session, vault, who, event_id)
    if view is None:
        return _not_found(who)
    try:
        values = events.typed(data)
        sent = form_fields(data, {"csrf": 200, "etag": 200})
    except FormError as exc:
        return _form_page(
            who,
            action=action,
            values=events.shown(view.event),
            etag=view.etag,
            error=_NOT_SENT.format(exc.message),
            status=400,
        )
    if not who.csrf_ok(action, sent["csrf"]):
        return _form_page(
            who, action=action, values=values, etag=sent["etag"], error=FORM_EXPIRED, status=403
        )
    try:
        history.patch_event(
            session=session,
            vault=vault,
            customer_id=who.customer.id,
            event_id=event_id,
            patch=events.change(values, view.event),
            if_match=sent["etag"] or None,
        )
    except ValidationFailed as exc:
        return _form_page(
            who,
            action=action,
            values=values,
            etag=sent["etag"],
            error="Nothing was saved. Please correct the fields below.",
            field_errors=events.messages(exc, values),
            status=422,
        )
    except PreconditionFailed:
        return _form_page(
            who,
            action=action,
            values=values,
            etag=view.etag,
            error=(
                "This event changed elsewhere since this page was opened, so nothing was saved. "
                "Check the form and save again to replace it."
            ),
            status=409,
        )
    return RedirectResponse("/data/history?done=saved", status_code=303)


@router.post("/data/history/{event_id}/delete")
def event_delete(
    event_id: str, who: PageCustomerDep, session: SessionDep, vault: VaultDep, data: PageFormDep
) -> Response:
    action = f"/data/history/{event_id}/delete"
    view = _event(session, vault, who, event_id)
    if view is None:
        return _not_found(who)
    try:
        csrf = form_fields(data, {"csrf": 200})["csrf"]
    except FormError:
        csrf = ""
    if not who.csrf_ok(action, csrf):
        return _form_page(
            who,
            action=f"/data/history/{event_id}",
            values=events.shown(view.event),
            etag=view.etag,
            error=FORM_EXPIRED,
            status=403,
        )
    history.delete_event(
        session=session, vault=vault, customer_id=who.customer.id, event_id=event_id
    )
    return RedirectResponse("/data/history?done=deleted", status_code=303)
