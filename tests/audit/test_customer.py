"""The customer's view of the log: their entries only, filtered and paged;
receipts that prove to anyone what the operator committed to; the log in
their export."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from consent.audit import entries, merkle, tree
from consent.audit.checkpoint import Checkpoint
from consent.audit.note import open_note
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer, exported
from vrm.accounts.models import Customer

LOG = "/api/v1/me/access-log"


def _read(vendor: Vendor, token: str, path: str = "/v1/data") -> None:
    r = vendor.client.get(path, headers=bearer(token))
    assert r.status_code == 200, r.text


def _log(person: Person, **params: Any) -> dict[str, Any]:
    r = person.client.get(LOG, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _types(body: dict[str, Any]) -> list[str]:
    return [item["entry"]["type"] for item in body["items"]]


def test_each_customer_sees_only_their_entries_newest_first(
    app: FastAPI, ana: Person, bob: Person, vendor: Vendor
) -> None:
    ana_token = tokens_for(ana, vendor, "profile.email:read")["access_token"]
    tokens_for(bob, vendor, "preferences:read")
    _read(vendor, ana_token)

    mine = _log(ana)
    assert _types(mine) == ["data.read", "token.issued", "consent.granted"]
    assert mine["next_cursor"] is None
    indexes = [item["index"] for item in mine["items"]]
    assert indexes == sorted(indexes, reverse=True)
    assert {item["entry"]["customer"] for item in mine["items"]} == {_pseudonym(app, ana)}
    assert mine["items"][0]["entry"]["fields"] == ["profile.email"]
    theirs = _log(bob)
    assert _types(theirs) == ["token.issued", "consent.granted"]
    assert not {i["index"] for i in theirs["items"]} & set(indexes)


def _pseudonym(app: FastAPI, person: Person) -> str:
    with Session(app.state.engine) as session:
        customer = session.get(Customer, person.id)
        assert customer is not None
        return entries.pseudonym(customer.audit_salt)


def test_the_log_filters_by_type_vendor_and_period_and_pages_with_a_cursor(
    app: FastAPI, ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")["access_token"]
    tokens_for(ana, other_vendor, "preferences:read")
    for _ in range(3):
        _read(vendor, token)

    assert _types(_log(ana, type="data")) == ["data.read"] * 3
    assert _types(_log(ana, type="consent.granted")) == ["consent.granted"] * 2
    others = _log(ana, vendor=other_vendor.client_id)
    assert _types(others) == ["token.issued", "consent.granted"]
    everything = _log(ana)["items"]
    middle = everything[3]["entry"]["at"]
    later = _log(ana, since=middle)["items"]
    assert [i["index"] for i in later] == [i["index"] for i in everything[:4]]
    earlier = _log(ana, until=middle)["items"]
    assert [i["index"] for i in earlier] == [i["index"] for i in everything[4:]]

    walked: list[int] = []
    cursor = None
    while True:
        page = _log(ana, limit=2, **({"cursor": cursor} if cursor else {}))
        walked += [i["index"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [i["index"] for i in everything]

    for params in ({"type": "wiped"}, {"limit": 0}, {"since": "yesterday"}):
        r = ana.client.get(LOG, params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # A cursor the server never gave out is a 400, as for the history
    # (docs/api.md); an overlong one fails the query's schema (422).
    for forged in ("abc", "-1", "9" * 19 + "0"):
        assert_problem(ana.client.get(LOG, params={"cursor": forged}), 400, "bad-request")
    assert ana.client.get(LOG, params={"cursor": "1" * 33}).status_code == 422


def test_the_log_needs_a_session(client: TestClient) -> None:
    assert_problem(client.get(LOG), 401, "unauthenticated")


def test_a_receipt_proves_its_entry_to_anyone(
    app: FastAPI, ana: Person, bob: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")["access_token"]
    _read(vendor, token)
    read = _log(ana, type="data.read")["items"][0]
    url = f"{LOG}/{read['index']}/receipt"
    assert_problem(ana.client.get(url), 409, "conflict")
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)

    r = ana.client.get(url)
    assert r.status_code == 200, r.text
    receipt = r.json()
    # What a third party checks, with the published key alone.
    key = app.state.audit_signer.verifier()
    checkpoint = Checkpoint.parse(open_note(receipt["checkpoint"], [key]).text)
    body = receipt["entry"].encode()
    assert merkle.leaf_hash(body) == base64.b64decode(receipt["leaf_hash"])
    merkle.verify_inclusion(
        merkle.leaf_hash(body),
        receipt["index"],
        checkpoint.size,
        [base64.b64decode(h) for h in receipt["proof"]],
        checkpoint.root,
    )
    entry = entries.parse(body)
    assert entry == read["entry"]
    salt = bytes.fromhex(receipt["salt"])
    assert receipt["personal"]["customer_id"] == ana.id
    assert receipt["personal"]["subject"]  # the vendor's name for ana
    opened = hashlib.sha256(salt + entries.canonical(receipt["personal"])).hexdigest()
    assert opened == entry["commitment"]
    assert entries.pseudonym(salt) == entry["customer"]

    # Nobody else's receipt, and no entry that is not about a customer.
    assert_problem(bob.client.get(url), 404, "not-found")
    assert_problem(ana.client.get(f"{LOG}/0/receipt"), 404, "not-found")


def test_the_export_carries_the_log_and_logs_itself(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    tokens_for(ana, vendor, "profile.email:read")
    first = exported(ana.client).json()["audit_log"]
    assert [e["entry"]["type"] for e in first] == [
        "consent.granted",
        "token.issued",
        "account.exported",
    ]
    again = exported(ana.client).json()["audit_log"]
    assert again[:3] == first
    assert [e["entry"]["type"] for e in again[3:]] == ["account.exported"]
