"""The one place where routers are assembled."""

from __future__ import annotations

from fastapi import APIRouter

from vrm.accounts.routes import router as accounts
from vrm.export.routes import router as export
from vrm.export.routes import schema_router as export_schema
from vrm.history.routes import router as history
from vrm.records.routes import router as records

api_router = APIRouter()
for router in (accounts, records, history, export, export_schema):
    api_router.include_router(router)
