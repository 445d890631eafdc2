from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response, status
from pydantic import AwareDatetime

from vrm.catalogue.history import EventType, HistoryEvent, Label
from vrm.db import SessionDep
from vrm.deps import CurrentCustomer, VaultDep
from vrm.errors import BadRequest, NotFound, problems
from vrm.history import service
from vrm.history.models import HistoryEventPublic, HistoryFilter, HistoryPage
from vrm.history.service import EventView

router = APIRouter(prefix="/api/v1/me/history", tags=["history"])

IfMatch = Annotated[str | None, Header(description="ETag from your last read of this event.")]


def _respond(response: Response, view: EventView) -> HistoryEventPublic:
    response.headers["ETag"] = view.etag
    return view.event


@router.get("", responses=problems(BadRequest))
def list_history(
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    vendor: Annotated[str | None, Query(max_length=200)] = None,
    type: EventType | None = None,
    label: Label | None = None,
    # Aware only: occurred_at always carries an offset, and comparing it with
    # a naive time would raise.
    since: Annotated[AwareDatetime | None, Query(description="occurred at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="occurred before")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIMIT)] = 50,
) -> HistoryPage:
    """Your history, newest first, a page at a time: pass ``next_cursor``
    back as ``cursor`` for the next page."""
    return service.list_events(
        session=session,
        vault=vault,
        customer_id=customer.id,
        filters=HistoryFilter(vendor=vendor, type=type, label=label, since=since, until=until),
        cursor=cursor,
        limit=limit,
    )


def _event_link(method: str) -> dict[str, Any]:
    # OpenAPI 3.1 link (section 4.8.20): the new event's id feeds the
    # operations on /{event_id}, for clients and stateful fuzzing alike.
    return {
        "operationRef": f"#/paths/~1api~1v1~1me~1history~1{{event_id}}/{method}",
        "parameters": {"event_id": "$response.body#/id"},
    }


_CREATED_LINKS = {
    "links": {
        "ReadEvent": _event_link("get"),
        "ChangeEvent": _event_link("patch"),
        "DeleteEvent": _event_link("delete"),
    }
}


@router.post("", status_code=status.HTTP_201_CREATED, responses={201: _CREATED_LINKS})
def add_event(
    body: HistoryEvent,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
) -> HistoryEventPublic:
    view = service.add_event(
        session=session, vault=vault, customer_id=customer.id, event=body, source="customer"
    )
    response.headers["Location"] = f"{router.prefix}/{view.event.id}"
    return _respond(response, view)


@router.get("/{event_id}", responses=problems(NotFound))
def get_event(
    event_id: str,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
) -> HistoryEventPublic:
    view = service.get_event(
        session=session, vault=vault, customer_id=customer.id, event_id=event_id
    )
    return _respond(response, view)


@router.patch("/{event_id}", responses=problems(NotFound, BadRequest))
def patch_event(
    event_id: str,
    body: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    response: Response,
    if_match: IfMatch = None,
) -> HistoryEventPublic:
    """Change an event with a JSON merge patch, e.g. ``{"labels": ["gift"]}``."""
    view = service.patch_event(
        session=session,
        vault=vault,
        customer_id=customer.id,
        event_id=event_id,
        patch=body,
        if_match=if_match,
    )
    return _respond(response, view)


@router.delete("/{event_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(NotFound))
def delete_event(
    event_id: str, customer: CurrentCustomer, session: SessionDep, vault: VaultDep
) -> None:
    service.delete_event(session=session, vault=vault, customer_id=customer.id, event_id=event_id)
