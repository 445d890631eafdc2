"""Migration 0010: deposit rows from before it keep their key spent and
lose what named their event (vrm/migrations/versions/0010_*.py)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import MetaData, Table, select, text
from sqlmodel import Session

from tests.conftest import Person
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import ME
from vrm.catalogue.history import HistoryEvent
from vrm.history.deposits import DepositRecord, deposits_of
from vrm.migrate import alembic_config
from vrm.settings import Settings

RECEIPT = {
    "vendor": "Bertrand Books",
    "type": "purchase",
    "occurred_at": "2026-11-20T15:30:00Z",
    "amount": "12.90",
    "currency": "EUR",
}
BEFORE = "0008"
SPENT = (
    "This Idempotency-Key was used before the store was upgraded and its event "
    "can no longer be returned; it will not be added again."
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody: an upgrade from before 0019 goes down to an old schema,
    # which only customers whose root keys the server holds can.
    return settings.model_copy(update={"key_custody": "server"})


def _deposit_rows(app: FastAPI) -> list[dict[str, object]]:
    with app.state.engine.connect() as conn:
        table = Table("vendor_deposit", MetaData(), autoload_with=conn)
        return [dict(row._mapping) for row in conn.execute(select(table))]


def test_a_deposit_from_before_0010_stays_spent_and_names_no_event(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    vendor = register_vendor(app)
    token = tokens_for(ana, vendor, "history:read history:write")["access_token"]
    headers = {**bearer(token), "Idempotency-Key": "order-1001"}
    assert vendor.client.post("/v1/history", json=RECEIPT, headers=headers).status_code == 201
    (event,) = ana.client.get(f"{ME}/history").json()["items"]
    config = alembic_config(settings)
    app.state.engine.dispose()

    command.downgrade(config, BEFORE)
    (row,) = _deposit_rows(app)
    day = datetime.now(UTC).date()
    # What the code before 0010 can make of it: no event, a body that
    # matches nothing (a retry is 422, never a second event).
    assert (row["event_id"], row["body_hash"]) == ("", b"")
    at = row["created_at"]
    assert isinstance(at, datetime)
    assert (at if at.tzinfo else at.replace(tzinfo=UTC)) == datetime(
        day.year, day.month, day.day, tzinfo=UTC
    )
    # As the code before 0010 wrote it: the event id, an unkeyed hash.
    body = HistoryEvent.model_validate(RECEIPT).model_dump_json().encode()
    with app.state.engine.begin() as conn:
        conn.execute(
            text("UPDATE vendor_deposit SET event_id = :id, body_hash = :body"),
            {"id": event["id"], "body": hashlib.sha256(body).digest()},
        )
    app.state.engine.dispose()
    command.upgrade(config, "head")

    (row,) = _deposit_rows(app)
    assert row == {
        "vendor_id": vendor.client_id,
        "customer_id": ana.id,
        "key_hash": row["key_hash"],
        "body_hash": None,
        "created_on": day,
    }
    for retry in (RECEIPT, {**RECEIPT, "amount": "13.90"}):
        r = vendor.client.post("/v1/history", json=retry, headers=headers)
        assert r.status_code == 409, r.text
        assert r.json()["detail"] == SPENT
    assert ana.client.get(f"{ME}/history").json()["items"] == [event]
    with Session(app.state.engine) as session:
        records = deposits_of(session=session, vault=app.state.vault, customer_id=ana.id)
    assert records == [DepositRecord(vendor.client_id, day, None)]
