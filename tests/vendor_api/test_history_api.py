"""Incremental history reads (GET /v1/data/history?since=) and vendor
deposits (POST /v1/history)."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import ME, RECEIPT, access_events, add_event, read
from vrm.history.deposits import VendorDeposit

HISTORY = "/v1/data/history"
WHEN = "2026-11-0{}T10:00:00Z"


def _page(vendor: Vendor, token: str, **params: Any) -> Any:
    r = vendor.client.get(HISTORY, params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    return r.json()


def _all_pages(vendor: Vendor, token: str, since: str | None, limit: int) -> tuple[Any, str]:
    """Every page from ``since``: (events, deleted ids), and the last cursor."""
    events: list[dict[str, Any]] = []
    deleted: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if since is not None:
        params["since"] = since
    while True:
        body = _page(vendor, token, **params)
        events += body["history"]
        deleted += body["deleted"]
        params["since"] = body["next_cursor"]
        if not body["has_more"]:
            return (events, deleted), body["next_cursor"]


def _notes(events: list[dict[str, Any]]) -> list[str]:
    return [e.get("notes", "") for e in events]


def test_first_read_pages_through_every_shared_event_and_never_a_private_one(
    ana: Person, vendor: Vendor
) -> None:
    for n in range(1, 6):
        add_event(ana, occurred_at=WHEN.format(n), notes=f"event {n}")
    add_event(ana, occurred_at=WHEN.format(6), notes="secret", labels=["private"])
    t = tokens_for(ana, vendor, "history:read")
    first = _page(vendor, t["access_token"], limit=2)
    assert _notes(first["history"]) == ["event 1", "event 2"]
    assert first["has_more"] is True
    assert first["deleted"] == []
    (events, deleted), _ = _all_pages(vendor, t["access_token"], None, 2)
    assert _notes(events) == [f"event {n}" for n in range(1, 6)]
    assert deleted == []
    assert "secret" not in str(events)
    # The ids are the vendor's pairwise ids, the same as in the full read.
    full = read(vendor, t["access_token"], HISTORY).json()["history"]
    assert {e["id"] for e in full} == {e["id"] for e in events}


def test_since_returns_only_what_changed_and_what_to_drop(ana: Person, vendor: Vendor) -> None:
    ids = [add_event(ana, occurred_at=WHEN.format(n), notes=f"event {n}") for n in range(1, 5)]
    hidden = add_event(ana, occurred_at=WHEN.format(5), notes="always private", labels=["private"])
    t = tokens_for(ana, vendor, "history:read")
    (events, _), cursor = _all_pages(vendor, t["access_token"], None, 10)
    vendor_id = {e["notes"]: e["id"] for e in events}
    assert _page(vendor, t["access_token"], since=cursor)["history"] == []

    assert ana.client.patch(f"{ME}/history/{ids[0]}", json={"notes": "edited"}).status_code == 200
    assert ana.client.delete(f"{ME}/history/{ids[1]}").status_code == 204
    r = ana.client.patch(f"{ME}/history/{ids[2]}", json={"labels": ["private"]})
    assert r.status_code == 200
    added = add_event(ana, occurred_at=WHEN.format(7), notes="new")
    # A private event's life never reaches the vendor, not even its deletion.
    assert ana.client.patch(f"{ME}/history/{hidden}", json={"notes": "still"}).status_code == 200
    assert ana.client.delete(f"{ME}/history/{hidden}").status_code == 204

    (events, deleted), _ = _all_pages(vendor, t["access_token"], cursor, 1)
    assert _notes(events) == ["edited", "new"]
    assert events[0]["id"] == vendor_id["event 1"]
    assert sorted(deleted) == sorted([vendor_id["event 2"], vendor_id["event 3"]])
    assert added not in str(events)  # our ids never leave, only pairwise ones


def test_incremental_reads_are_recorded_and_need_the_history_grant(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    add_event(ana, occurred_at=WHEN.format(1))
    t = tokens_for(ana, vendor, "history:read")
    _page(vendor, t["access_token"], limit=5)
    events = access_events(app, ana.id)
    assert [(e.categories, e.fields, e.action) for e in events] == [
        (["history"], ["history"], "read")
    ]
    other = tokens_for(ana, vendor, "profile.email:read")
    r = vendor.client.get(HISTORY, params={"limit": 5}, headers=bearer(other["access_token"]))
    assert r.status_code == 403
    assert r.json()["type"].endswith("insufficient-scope")


@pytest.mark.parametrize("since", ["nonsense", "djEuLTE", "djEuMS5aWg", "x" * 200])
def test_a_cursor_we_did_not_give_out_is_a_400_problem(
    ana: Person, vendor: Vendor, since: str
) -> None:
    t = tokens_for(ana, vendor, "history:read")
    r = vendor.client.get(HISTORY, params={"since": since}, headers=bearer(t["access_token"]))
    assert_problem(r, 400, "bad-request")


def test_a_cursor_longer_than_any_we_give_out_fails_the_query_schema(
    ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor, "history:read")
    r = vendor.client.get(HISTORY, params={"since": "x" * 201}, headers=bearer(t["access_token"]))
    assert_problem(
        r,
        422,
        "validation",
        detail="query.since: String should have at most 200 characters",
        instance=HISTORY,
        errors=[
            {
                "field": "query.since",
                "message": "String should have at most 200 characters",
                "code": "string_too_long",
            }
        ],
    )


def test_limit_out_of_range_is_refused(ana: Person, vendor: Vendor) -> None:
    t = tokens_for(ana, vendor, "history:read")
    for limit in (0, 201, "ten", ""):
        r = vendor.client.get(HISTORY, params={"limit": limit}, headers=bearer(t["access_token"]))
        assert r.status_code == 422, r.text


def test_revoked_grant_reads_nothing_incrementally(ana: Person, vendor: Vendor) -> None:
    add_event(ana, occurred_at=WHEN.format(1))
    t = tokens_for(ana, vendor, "history:read")
    cursor = _page(vendor, t["access_token"], limit=5)["next_cursor"]
    assert ana.client.delete(f"{ME}/grants/{t['grant_id']}").status_code == 204
    add_event(ana, occurred_at=WHEN.format(2))
    r = vendor.client.get(HISTORY, params={"since": cursor}, headers=bearer(t["access_token"]))
    assert r.status_code == 401


# -- deposits -----------------------------------------------------------------


def _deposit(vendor: Vendor, token: str, body: Any, key: str | None = "order-1001") -> Any:
    headers = bearer(token)
    if key is not None:
        headers["Idempotency-Key"] = key
    return vendor.client.post("/v1/history", json=body, headers=headers)


def _writer(person: Person, vendor: Vendor) -> str:
    return str(tokens_for(person, vendor, "history:read history:write")["access_token"])


def test_a_deposit_lands_in_the_customers_history_marked_with_its_source(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    r = _deposit(vendor, token, RECEIPT)
    assert r.status_code == 201, r.text
    shared = r.json()
    assert shared["items"][0]["name"] == "Ensaio sobre a Cegueira"
    mine = ana.client.get(f"{ME}/history").json()["items"]
    assert len(mine) == 1
    assert mine[0]["source"] == f"vendor:{vendor.client_id}"
    assert mine[0]["amount"] == "12.90"
    # The vendor sees it under its pairwise id, like any other event.
    assert read(vendor, token, HISTORY).json()["history"][0]["id"] == shared["id"]
    assert [(e.action, e.fields) for e in access_events(app, ana.id)][0] == ("write", ["history"])


def test_the_customer_can_label_and_delete_a_deposited_event(ana: Person, vendor: Vendor) -> None:
    token = _writer(ana, vendor)
    assert _deposit(vendor, token, RECEIPT).status_code == 201
    event_id = ana.client.get(f"{ME}/history").json()["items"][0]["id"]
    r = ana.client.patch(f"{ME}/history/{event_id}", json={"labels": ["gift"]})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == f"vendor:{vendor.client_id}"
    assert read(vendor, token, HISTORY).json()["history"][0]["labels"] == ["gift"]
    r = ana.client.patch(f"{ME}/history/{event_id}", json={"source": "customer"})
    assert r.status_code == 400
    assert ana.client.delete(f"{ME}/history/{event_id}").status_code == 204
    assert ana.client.get(f"{ME}/history").json()["items"] == []


def test_every_status_a_deposit_answers_is_in_the_openapi_document(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # Found by tests/test_fuzz.py: a replay's 200 was not documented.
    token = _writer(ana, vendor)
    statuses = {_deposit(vendor, token, RECEIPT).status_code for _ in range(2)}
    documented = app.openapi()["paths"]["/v1/history"]["post"]["responses"]
    assert statuses == {201, 200}
    assert {str(status) for status in statuses} <= documented.keys()


def test_the_same_key_and_body_returns_the_same_event_once(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    first = _deposit(vendor, token, RECEIPT)
    again = _deposit(vendor, token, RECEIPT)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1
    with Session(app.state.engine) as session:
        rows = session.exec(select(VendorDeposit)).all()
    assert len(rows) == 1
    assert b"order-1001" not in rows[0].key_hash  # kept only as a keyed hash


def test_the_same_key_with_another_body_is_refused(ana: Person, vendor: Vendor) -> None:
    token = _writer(ana, vendor)
    assert _deposit(vendor, token, RECEIPT).status_code == 201
    r = _deposit(vendor, token, {**RECEIPT, "amount": "13.90"})
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("idempotency-key-reused")
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1


def test_keys_are_per_customer(ana: Person, bob: Person, vendor: Vendor) -> None:
    assert _deposit(vendor, _writer(ana, vendor), RECEIPT).status_code == 201
    assert _deposit(vendor, _writer(bob, vendor), RECEIPT).status_code == 201
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1
    assert len(bob.client.get(f"{ME}/history").json()["items"]) == 1


def test_keys_are_per_vendor(ana: Person, vendor: Vendor, other_vendor: Vendor) -> None:
    # Another vendor's key never answers for this one: no reading back a
    # competitor's deposit by guessing its order number.
    first = _deposit(vendor, _writer(ana, vendor), RECEIPT)
    second = _deposit(other_vendor, _writer(ana, other_vendor), RECEIPT)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    sources = sorted(e["source"] for e in ana.client.get(f"{ME}/history").json()["items"])
    assert sources == sorted([f"vendor:{vendor.client_id}", f"vendor:{other_vendor.client_id}"])


def test_a_retry_after_the_customer_deleted_the_event_does_not_bring_it_back(
    ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    assert _deposit(vendor, token, RECEIPT).status_code == 201
    event_id = ana.client.get(f"{ME}/history").json()["items"][0]["id"]
    assert ana.client.delete(f"{ME}/history/{event_id}").status_code == 204
    r = _deposit(vendor, token, RECEIPT)
    assert r.status_code == 409, r.text
    assert ana.client.get(f"{ME}/history").json()["items"] == []


def test_a_retry_of_an_event_the_customer_made_private_reveals_nothing(
    ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    first = _deposit(vendor, token, RECEIPT).json()
    event_id = ana.client.get(f"{ME}/history").json()["items"][0]["id"]
    r = ana.client.patch(f"{ME}/history/{event_id}", json={"labels": ["private"], "notes": "mine"})
    assert r.status_code == 200
    again = _deposit(vendor, token, RECEIPT)
    assert again.status_code == 200
    assert again.json() == {"id": first["id"]}


@pytest.mark.parametrize("key", [None, "", "has space", "tab\tinside", "k" * 256])
def test_a_missing_or_malformed_key_is_400_and_writes_nothing(
    ana: Person, vendor: Vendor, key: str | None
) -> None:
    r = _deposit(vendor, _writer(ana, vendor), RECEIPT, key=key)
    assert r.status_code == 400, r.text
    assert "Idempotency-Key" in r.json()["detail"]
    assert ana.client.get(f"{ME}/history").json()["items"] == []


def test_a_vendor_cannot_set_the_customers_labels(ana: Person, vendor: Vendor) -> None:
    token = _writer(ana, vendor)
    for body in (
        {**RECEIPT, "labels": ["gift"]},
        {**RECEIPT, "items": [{"name": "x", "labels": ["private"]}]},
    ):
        r = _deposit(vendor, token, body)
        assert r.status_code == 422, r.text
    assert ana.client.get(f"{ME}/history").json()["items"] == []


def test_an_invalid_event_is_422_and_writes_nothing(ana: Person, vendor: Vendor) -> None:
    r = _deposit(vendor, _writer(ana, vendor), {**RECEIPT, "type": "teleport"})
    assert_problem(r, 422, "validation", errors=ANY)
    assert ana.client.get(f"{ME}/history").json()["items"] == []


def test_depositing_needs_history_write(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "history:read")["access_token"]
    r = _deposit(vendor, token, RECEIPT)
    assert r.status_code == 403, r.text
    assert 'scope="history:write"' in r.headers["www-authenticate"]
    assert ana.client.get(f"{ME}/history").json()["items"] == []
    assert access_events(app, ana.id) == []


def test_depositing_without_a_valid_token_is_401(ana: Person, vendor: Vendor) -> None:
    r = vendor.client.post("/v1/history", json=RECEIPT, headers={"Idempotency-Key": "k"})
    assert r.status_code == 401
    r = _deposit(vendor, "vat_not-a-token", RECEIPT)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
