"""What the database shows of a vendor deposit (issue 13, defect 2).

One reads the tables directly, as whoever holds a copy of the database and
not the key store would: no column of a ``vendor_deposit`` row may match a
column of the event it deposited (so no join names the event's vendor or
the time of the purchase), and no hash in it may be one that someone who
can guess the body or the key (the vendor above all) can recompute.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import FastAPI
from sqlalchemy import MetaData, Table, select
from sqlmodel import Session

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import ME, RECEIPT, access_events, add_event
from vrm.catalogue.history import HistoryEvent
from vrm.history.deposits import DepositRecord, deposits_of

KEY = "order-1001"


def _deposit(vendor: Vendor, token: str, body: Any = RECEIPT, key: str = KEY) -> Any:
    headers = {**bearer(token), "Idempotency-Key": key}
    return vendor.client.post("/v1/history", json=body, headers=headers)


def _writer(person: Person, vendor: Vendor) -> str:
    return str(tokens_for(person, vendor, "history:read history:write")["access_token"])


def _table(app: FastAPI, name: str) -> list[dict[str, Any]]:
    """Every row of a table as the database hands it back, columns and all."""
    with app.state.engine.connect() as conn:
        table = Table(name, MetaData(), autoload_with=conn)
        return [dict(row._mapping) for row in conn.execute(select(table))]


def _forms(value: Any) -> set[Any]:
    """A value as a join could meet it: as stored, as text, as bytes, as hex."""
    if isinstance(value, bytes):
        return {value, value.hex()}
    if isinstance(value, str):
        return {value, value.encode(), value.lower()}
    return {value}


def _joins(deposit: dict[str, Any], event: dict[str, Any]) -> dict[str, str]:
    """The deposit columns that equal an event column (customer_id aside,
    which every row of the customer's carries on purpose)."""
    found = {}
    for d_name, d_value in deposit.items():
        for e_name, e_value in event.items():
            if "customer_id" in (d_name, e_name) or d_value is None or e_value is None:
                continue
            if _forms(d_value) & _forms(e_value):
                found[d_name] = e_name
    return found


def test_no_column_joins_a_deposit_to_its_event_so_no_join_names_the_vendor(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    add_event(ana, occurred_at="2026-11-19T09:00:00Z", notes="the customer's own")
    assert _deposit(vendor, _writer(ana, vendor)).status_code == 201
    events = _table(app, "history_record")
    (deposit,) = _table(app, "vendor_deposit")
    vendors = {row["id"]: row["name"] for row in _table(app, "vendor")}
    # The attacker's join: any column of the deposit equal to one of an
    # event, then the deposit's vendor.
    named = {e["id"]: vendors[deposit["vendor_id"]] for e in events if _joins(deposit, e)}
    assert named == {}
    assert [_joins(deposit, e) for e in events] == [{}, {}]


def test_a_deposit_row_holds_no_time_of_day_that_would_match_the_events(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    assert _deposit(vendor, _writer(ana, vendor)).status_code == 201
    (event,) = _table(app, "history_record")
    (deposit,) = _table(app, "vendor_deposit")
    times = {k: v for k, v in deposit.items() if isinstance(v, datetime)}
    assert times == {}
    days = {k: v for k, v in deposit.items() if isinstance(v, date)}
    # The UTC day of the deposit, for retention; nothing finer.
    created = event["created_at"]
    assert days == {"created_on": created.date()}


def test_no_unkeyed_hash_of_the_body_or_the_key_is_stored(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    assert _deposit(vendor, _writer(ana, vendor)).status_code == 201
    (deposit,) = _table(app, "vendor_deposit")
    (event,) = _table(app, "history_record")
    parsed = HistoryEvent.model_validate(RECEIPT)
    guesses = [
        parsed.model_dump_json().encode(),
        parsed.model_dump_json(exclude_none=True).encode(),
        json.dumps(RECEIPT).encode(),
        json.dumps(RECEIPT, sort_keys=True, separators=(",", ":")).encode(),
        KEY.encode(),
        event["id"].encode(),
    ]
    unkeyed = {
        h(g).digest()
        for g in guesses
        for h in (hashlib.sha256, hashlib.sha512, hashlib.sha1, hashlib.md5)
    }
    stored = {v for v in deposit.values() if isinstance(v, bytes)}
    assert stored  # the key and body hashes are there, as keyed hashes
    assert {s for s in stored if any(s.startswith(u) or u.startswith(s) for u in unkeyed)} == set()


def test_after_the_customer_deletes_the_event_nothing_refers_to_it_and_a_retry_is_409(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    assert _deposit(vendor, token).status_code == 201
    (event,) = _table(app, "history_record")
    assert ana.client.delete(f"{ME}/history/{event['id']}").status_code == 204
    assert _table(app, "history_record") == []
    # What is left is the spent key, so that a retry cannot bring the event
    # back: the vendor, the customer, the day, two keyed hashes.
    (deposit,) = _table(app, "vendor_deposit")
    assert sorted(deposit) == ["body_hash", "created_on", "customer_id", "key_hash", "vendor_id"]
    assert _joins(deposit, event) == {}
    assert_problem(_deposit(vendor, token), 409, "conflict")
    assert_problem(
        _deposit(vendor, token, {**RECEIPT, "amount": "13.90"}), 422, "idempotency-key-reused"
    )
    assert _table(app, "history_record") == []


def test_a_deposited_event_id_is_shaped_like_any_other(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # A derived id that looked derived would tell which events vendors
    # deposited: it carries the version and variant bits of a random one.
    own = add_event(ana, occurred_at="2026-11-19T09:00:00Z")
    assert _deposit(vendor, _writer(ana, vendor)).status_code == 201
    ids = sorted(row["id"] for row in _table(app, "history_record"))
    assert own in ids
    assert [(uuid.UUID(i).version, uuid.UUID(i).variant, len(i)) for i in ids] == [
        (4, uuid.RFC_4122, 32),
        (4, uuid.RFC_4122, 32),
    ]


def test_the_customer_sees_each_deposit_with_its_event_while_it_exists(
    app: FastAPI, ana: Person, bob: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    assert _deposit(vendor, token).status_code == 201
    assert (
        _deposit(vendor, token, {**RECEIPT, "amount": "1.00"}, key="order-1002").status_code == 201
    )
    assert _deposit(other_vendor, _writer(ana, other_vendor)).status_code == 201
    assert _deposit(vendor, _writer(bob, vendor)).status_code == 201
    mine = ana.client.get(f"{ME}/history").json()["items"]
    by_amount = {(e["source"], e["amount"]): e["id"] for e in mine}
    gone = by_amount[(f"vendor:{vendor.client_id}", "1.00")]
    assert ana.client.delete(f"{ME}/history/{gone}").status_code == 204
    today = _table(app, "vendor_deposit")[0]["created_on"]
    with Session(app.state.engine) as session:
        records = deposits_of(session=session, vault=app.state.vault, customer_id=ana.id)
    assert sorted(records, key=repr) == sorted(
        [
            DepositRecord(
                vendor.client_id, today, by_amount[(f"vendor:{vendor.client_id}", "12.90")]
            ),
            DepositRecord(vendor.client_id, today, None),
            DepositRecord(
                other_vendor.client_id,
                today,
                by_amount[(f"vendor:{other_vendor.client_id}", "12.90")],
            ),
        ],
        key=repr,
    )


def test_the_access_event_of_a_deposit_says_the_day_not_the_time(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # access_event.at to the microsecond would match the event's created_at
    # as well as the deposit row's did, and it names the vendor.
    assert _deposit(vendor, _writer(ana, vendor)).status_code == 201
    (event,) = _table(app, "history_record")
    (write,) = [row for row in access_events(app, ana.id) if row.action == "write"]
    day = event["created_at"].date()
    assert (write.vendor_id, write.at) == (vendor.client_id, datetime.combine(day, time(), UTC))
