"""The customer's machine-readable export (GDPR Art. 15 and 20) and its
published JSON Schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from vrm.db import SessionDep
from vrm.deps import CurrentCustomer, SettingsDep, VaultDep
from vrm.export import service

router = APIRouter(prefix="/api/v1/me", tags=["export"])
schema_router = APIRouter(prefix="/api/v1", tags=["export"])


async def export_sections(request: Request) -> Mapping[str, service.Section]:
    """The sections the layers above the store add, as create_app set them."""
    sections: Mapping[str, service.Section] = request.app.state.export_sections
    return sections


SectionsDep = Annotated[Mapping[str, service.Section], Depends(export_sections)]


@router.get("/export")
def export(
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
    sections: SectionsDep,
    response: Response,
) -> dict[str, Any]:
    """Everything the store holds about you, as one JSON document; its
    JSON Schema is at /api/v1/export/schema."""
    response.headers["Content-Disposition"] = 'attachment; filename="vrm-export.json"'
    return service.export(
        session=session, vault=vault, settings=settings, customer=customer, sections=sections
    )


@schema_router.get(
    "/export/schema",
    response_class=JSONResponse,
    responses={200: {"content": {service.SCHEMA_MEDIA_TYPE: {}}}},
)
def export_schema() -> JSONResponse:
    """The JSON Schema (draft 2020-12) every export follows. Public: whoever
    receives an export (GDPR Art. 20(1)) can check it without an account."""
    return JSONResponse(service.json_schema(), media_type=service.SCHEMA_MEDIA_TYPE)
