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

from consent.oauth import tokens
from consent.oauth.routes import bearer_token
from vrm.catalogue.history import HistoryEvent
from vrm.db import SessionDep, read_snapshot
from vrm.deps import VaultDep
from vrm.etags import matches_if_none_match
from vrm.vendor_api import feed, service
from vrm.vendor_api.service import InsufficientScope, InvalidToken, Reader

_NO_CUSTOMER = "This token names no customer; use one from the authorization code flow."

_NO_FEED = "The feed needs a client-credentials token with the feed:read scope."
_NO_STORE = {"Cache-Control": "no-store"}

router = APIRouter(prefix="/v1/data", tags=["vendor data"])
deposit_router = APIRouter(prefix="/v1/history", tags=["vendor data"])
feed_router = APIRouter(prefix="/v1/feed", tags=["vendor data"])


def _active_token(request: Request, session: SessionDep, vault: VaultDep) -> tokens.ActiveToken:
    token = bearer_token(request)
    if token is None:
        raise InvalidToken("Send an access token as Authorization: Bearer.", token_sent=False)
    active = tokens.check_access_token(session, vault, token)
    if active is None:
        raise InvalidToken("The access token is not active.", token_sent=True)
    return active


def current_reader(request: Request, session: SessionDep, vault: VaultDep) -> Reader:
    active = _active_token(request, session, vault)
    customer_id = active.token.customer_id
    if customer_id is None or active.grant is None:
        raise InsufficientScope(_NO_CUSTOMER)
    return Reader(
        vendor_id=active.vendor.id,
        customer_id=customer_id,
        grant_id=active.grant.id,
        purpose=active.grant.purpose,
        subject=tokens.pairwise_subject(vault, active.vendor.id, customer_id),
        accesses=active.accesses,
    )


def snapshot_reader(request: Request, session: SessionDep, vault: VaultDep) -> Reader:
    """current_reader for reads: the token check and the data read see one
    snapshot, so a read never mixes a grant that was active with data
    written after it was revoked."""
    read_snapshot(session)
    return current_reader(request, session, vault)


# Reads run in one snapshot; the deposit writes (and takes the change-log
# clock, which a snapshot transaction could not update concurrently).
ReaderDep = Annotated[Reader, Depends(snapshot_reader)]
WriterDep = Annotated[Reader, Depends(current_reader)]
IfNoneMatch = Annotated[str | None, Header()]


def _respond(
    session: SessionDep, reader: Reader, projection: service.Projection, if_none_match: str | None
) -> Response:
    etag = projection.etag
    # The vendor may keep what it read (within the grant's retention), but no
    # shared cache may; every reuse revalidates, so every use is counted.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    not_modified = matches_if_none_match(if_none_match, etag)
    service.record_access(
        session=session, reader=reader, projection=projection, not_modified=not_modified
    )
    if not_modified:
        return Response(status_code=304, headers=headers)
    return Response(
        service.canonical_json(projection.body), media_type="application/json", headers=headers
    )


@router.get("")
def read_all(
    reader: ReaderDep,
    session: SessionDep,
    vault: VaultDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """Every granted category, each cut down to its granted fields."""
    projection = service.project(
        session=session,
        vault=vault,
        reader=reader,
        categories=service.readable_categories(reader.accesses),
    )
    return _respond(session, reader, projection, if_none_match)


@router.get("/history")
def read_history(
    reader: ReaderDep,
    session: SessionDep,
    vault: VaultDep,
    since: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=service.MAX_HISTORY_LIMIT)] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The history as granted. Without ``since`` or ``limit``: every shared
    event, newest first, with an ETag. With either: incremental reads in
    the order events changed; keep ``next_cursor`` and pass it as ``since``
    next time to get only what changed (and, in ``deleted``, what to drop)."""
    if since is None and limit is None:
        return read_category("history", reader, session, vault, if_none_match)
    service.require_category(reader, "history")
    projection = service.history_changes(
        session=session,
        vault=vault,
        reader=reader,
        since=since,
        limit=limit or service.DEFAULT_HISTORY_LIMIT,
    )
    service.record_access(session=session, reader=reader, projection=projection, not_modified=False)
    return Response(
        service.canonical_json(projection.body), media_type="application/json", headers=_NO_STORE
    )


@router.get("/{category}")
def read_category(
    category: str,
    reader: ReaderDep,
    session: SessionDep,
    vault: VaultDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """One category, cut down to its granted fields; 403 if not granted."""
    service.require_category(reader, category)
    projection = service.project(session=session, vault=vault, reader=reader, categories=[category])
    return _respond(session, reader, projection, if_none_match)


@deposit_router.post("", status_code=status.HTTP_201_CREATED)
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
    result = service.deposit(
        session=session, vault=vault, reader=reader, idempotency_key=idempotency_key, event=body
    )
    return JSONResponse(
        result.event,
        status_code=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        headers=_NO_STORE,
    )


def current_feed_vendor(request: Request, session: SessionDep, vault: VaultDep) -> str:
    active = _active_token(request, session, vault)
    if active.grant is not None or "feed:read" not in active.vendor_scopes:
        raise InsufficientScope(_NO_FEED, scope="feed:read")
    return active.vendor.id


@feed_router.get("")
def read_feed(
    vendor_id: Annotated[str, Depends(current_feed_vendor)],
    session: SessionDep,
    vault: VaultDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=feed.MAX_LIMIT)] = feed.DEFAULT_LIMIT,
) -> Response:
    """Changes to every customer with an active grant, in order, each
    projected to its grant; snapshots where grants start, tombstones where
    they end or shrink. Resume from ``next_cursor``."""
    page = feed.read(session=session, vault=vault, vendor_id=vendor_id, cursor=cursor, limit=limit)
    body = {"items": page.items, "next_cursor": page.next_cursor, "has_more": page.has_more}
    return Response(service.canonical_json(body), media_type="application/json", headers=_NO_STORE)
