"""``/v1/data``: what a vendor holding consent may read of one customer.

Bearer tokens from the authorization code flow only, and only from the
Authorization header (RFC 6750 2.1; never the query string). Every answer
with data, and every 304, records an access event before it is sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from consent.oauth import tokens
from consent.oauth.routes import bearer_token
from vrm.db import SessionDep
from vrm.deps import VaultDep
from vrm.etags import matches_if_none_match
from vrm.vendor_api import service
from vrm.vendor_api.service import InsufficientScope, InvalidToken, Reader

_NO_CUSTOMER = "This token names no customer; use one from the authorization code flow."

router = APIRouter(prefix="/v1/data", tags=["vendor data"])


def current_reader(request: Request, session: SessionDep, vault: VaultDep) -> Reader:
    token = bearer_token(request)
    if token is None:
        raise InvalidToken("Send an access token as Authorization: Bearer.", token_sent=False)
    active = tokens.check_access_token(session, vault, token)
    if active is None:
        raise InvalidToken("The access token is not active.", token_sent=True)
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


ReaderDep = Annotated[Reader, Depends(current_reader)]
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
