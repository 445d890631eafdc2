"""GET, PUT and PATCH for each document category, with ETags.

No ``from __future__ import annotations`` here: the handlers are built per
category and FastAPI must see the real schema class in ``body: schema``.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from vrm.catalogue import CATEGORIES, DOCUMENT_CATEGORIES
from vrm.db import SessionDep
from vrm.deps import CurrentCustomer, VaultDep
from vrm.records import service
from vrm.records.service import Document

router = APIRouter(prefix="/api/v1/me", tags=["records"])

IfMatch = Annotated[
    str | None,
    Header(description="ETag from your last read; a stale one gets 412 instead of overwriting."),
]
MergePatch = Annotated[
    dict[str, Any],
    Body(
        media_type="application/merge-patch+json",
        description="JSON merge patch (RFC 7396): null removes a member.",
    ),
]


def _respond(response: Response, document: Document) -> BaseModel | Response:
    headers = {"ETag": document.etag}
    if document.model is None:
        # Stored before a rule it breaks: answered as stored, not through
        # the response model, so that its owner can read and repair it.
        return JSONResponse(document.public, headers=headers)
    response.headers.update(headers)
    return document.model


def _add_routes(category: str) -> None:
    schema: Any = CATEGORIES[category].schema
    path = f"/{category}"

    def read(
        customer: CurrentCustomer, session: SessionDep, vault: VaultDep, response: Response
    ) -> BaseModel | Response:
        document = service.read_document(
            session=session, vault=vault, customer_id=customer.id, category=category
        )
        return _respond(response, document)

    def replace(
        body: schema,
        customer: CurrentCustomer,
        session: SessionDep,
        vault: VaultDep,
        response: Response,
        if_match: IfMatch = None,
    ) -> BaseModel | Response:
        document = service.replace_document(
            session=session,
            vault=vault,
            customer_id=customer.id,
            category=category,
            data=body,
            if_match=if_match,
        )
        return _respond(response, document)

    def patch(
        body: MergePatch,
        customer: CurrentCustomer,
        session: SessionDep,
        vault: VaultDep,
        response: Response,
        if_match: IfMatch = None,
    ) -> BaseModel | Response:
        document = service.patch_document(
            session=session,
            vault=vault,
            customer_id=customer.id,
            category=category,
            patch=body,
            if_match=if_match,
        )
        return _respond(response, document)

    title = category.capitalize()
    router.add_api_route(
        path, read, methods=["GET"], response_model=schema, summary=f"Read your {category}"
    )
    router.add_api_route(
        path, replace, methods=["PUT"], response_model=schema, summary=f"Replace your {category}"
    )
    router.add_api_route(
        path,
        patch,
        methods=["PATCH"],
        response_model=schema,
        summary=f"Change part of your {category}",
        operation_id=f"patch_{category}",
        name=f"{title} merge patch",
    )


for _category in DOCUMENT_CATEGORIES:
    _add_routes(_category)
