"""The vendor data API.

``/v1/data`` and ``/v1/history``: one customer, with a Bearer token from the
authorization code flow. ``/v1/feed``: all of a vendor's customers, with a
client-credentials token holding ``feed:read``. Tokens come only from the
Authorization header (RFC 6750 2.1; never the query string). Every answer
with data, every 304 and every deposit records an access event before it
is sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from consent.oauth import bearer, tokens
from vrm.catalogue.history import HistoryEvent
from vrm.db import SessionDep
from vrm.deps import VaultDep
from vrm.errors import BadRequest, Conflict, problems, raises
from vrm.feed.retention import CursorExpired
from vrm.vendor_api import deposit, edge, feed, projection
from vrm.vendor_api.edge import InsufficientScope, InvalidToken, Reader

_NO_FEED = "The feed needs a client-credentials token with the feed:read scope."

deposit_router = APIRouter(prefix="/v1/history", tags=["vendor data"])
feed_router = APIRouter(prefix="/v1/feed", tags=["vendor data"])


def _active_token(request: Request, session: SessionDep, vault: VaultDep) -> tokens.ActiveToken:
    return bearer.active_token(session.connection(), vault, request.headers)


@raises(InvalidToken, InsufficientScope)
def current_reader(request: Request, session: SessionDep, vault: VaultDep) -> Reader:
    return edge.reader_of(vault, _active_token(request, session, vault))


WriterDep = Annotated[Reader, Depends(current_reader)]


@deposit_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"description": "The same Idempotency-Key and body again: the event stored then."},
        **problems(BadRequest, Conflict),
    },
)
def deposit_history(
    body: HistoryEvent,
    reader: WriterDep,
    session: SessionDep,
    vault: VaultDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> JSONResponse:
    """Add a receipt or an interaction to the customer's history (needs
    ``history:write``). 201 the first time; the same Idempotency-Key and
    body again returns 200 and the same event."""
    result = deposit.deposit(
        session=session, vault=vault, reader=reader, idempotency_key=idempotency_key, event=body
    )
    return JSONResponse(
        result.event,
        status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
    )


@raises(InvalidToken, InsufficientScope)
def current_feed_vendor(request: Request, session: SessionDep, vault: VaultDep) -> str:
    active = _active_token(request, session, vault)
    if active.grant is not None or "feed:read" not in active.vendor_scopes:
        raise InsufficientScope(_NO_FEED, scope="feed:read")
    return active.vendor.id


class FeedQuery(BaseModel):
    """The query of ``/v1/feed``; a failure is a 422 ``validation``, as for
    every query (vrm.problems.invalid)."""

    cursor: Annotated[str | None, Field(max_length=200)] = None
    limit: Annotated[int, Field(ge=1, le=feed.MAX_LIMIT)] = feed.DEFAULT_LIMIT


@feed_router.get("", responses=problems(BadRequest, CursorExpired))
def read_feed(
    vendor_id: Annotated[str, Depends(current_feed_vendor)],
    session: SessionDep,
    vault: VaultDep,
    query: Annotated[FeedQuery, Query()],
) -> Response:
    """Changes to every customer with an active grant, in order, each
    projected to its grant; snapshots where grants start, tombstones where
    they end or shrink. Resume from ``next_cursor``."""
    page = feed.read(
        session=session, vault=vault, vendor_id=vendor_id, cursor=query.cursor, limit=query.limit
    )
    body = {"items": page.items, "next_cursor": page.next_cursor, "has_more": page.has_more}
    return Response(projection.canonical_json(body), media_type="application/json")
