"""Steps the notice tests share: a worker's pass, the log's entries, a
notice's claims checked as a vendor checks them."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import text
from sqlmodel import Session, select

from consent.notices.models import VendorNotice
from consent.notices.worker import Notices

GRANTS = "/api/v1/me/grants"


def notices_of(app: FastAPI, timeout: float = 2.0) -> Notices:
    """A worker as the server's background work runs it."""
    settings = app.state.settings.model_copy(update={"notice_timeout_seconds": timeout})
    return Notices(app.state.engine, app.state.vault, settings)


def run_once(app: FastAPI, timeout: float = 2.0) -> int:
    worker = notices_of(app, timeout)
    try:
        return worker.run()
    finally:
        worker.close()


def outbox(app: FastAPI) -> list[VendorNotice]:
    with Session(app.state.engine) as session:
        return list(session.exec(select(VendorNotice).order_by(VendorNotice.seq)).all())


def entries(app: FastAPI, *types: str) -> list[dict[str, Any]]:
    with app.state.engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM audit_entry ORDER BY idx")).scalars()
        found = [json.loads(body) for body in bodies]
    return [e for e in found if not types or e["type"] in types]


def verified(client: TestClient, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a notice, its signature checked against the
    store's published JWKS (a wrong signature raises)."""
    keys = KeySet.import_key_set(client.get("/oauth/jwks").json())
    found = jws.deserialize_compact(token, keys, algorithms=["ES256"])
    return dict(found.headers()), json.loads(found.payload)
