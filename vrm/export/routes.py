from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from vrm.db import SessionDep
from vrm.deps import CurrentCustomer, VaultDep
from vrm.export import service

router = APIRouter(prefix="/api/v1/me", tags=["export"])


@router.get("/export")
def export(
    customer: CurrentCustomer, session: SessionDep, vault: VaultDep, response: Response
) -> dict[str, Any]:
    """Everything the store holds about you, as one JSON document."""
    response.headers["Content-Disposition"] = 'attachment; filename="vrm-export.json"'
    return service.export(session=session, vault=vault, customer=customer)
