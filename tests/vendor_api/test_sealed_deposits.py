"""Vendor deposits while a customer-held customer is away (vrm/history/pending.py):
sealed to their public key, answered as any deposit, folded into their
history at their next log-in, once."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import MetaData, Table, select, update
from sqlmodel import Session, col

from tests.conftest import Person, log_back_in, log_out, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import ME, RECEIPT, access_events
from vrm import hooks
from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.crypto import aead
from vrm.history.deposits import event_id_for, key_hash
from vrm.history.pending import PendingDeposit
from vrm.keys import sealed_box
from vrm.keys.pairwise import pairwise_event_id
from vrm.settings import Settings

KEY = "order-1001"
OTHER_KEY = "order-1002"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_custody": "customer"})


def _deposit(vendor: Vendor, token: str, body: Any = RECEIPT, key: str = KEY) -> Any:
    headers = {**bearer(token), "Idempotency-Key": key}
    return vendor.client.post("/v1/history", json=body, headers=headers)


def _writer(person: Person, vendor: Vendor, scope: str = "history:write") -> str:
    return str(tokens_for(person, vendor, scope)["access_token"])


def _table(app: FastAPI, name: str) -> list[dict[str, Any]]:
    with app.state.engine.connect() as conn:
        table = Table(name, MetaData(), autoload_with=conn)
        return [dict(row._mapping) for row in conn.execute(select(table))]


def _events_of(app: FastAPI, customer_id: str) -> list[dict[str, Any]]:
    return [r for r in _table(app, "history_record") if r["customer_id"] == customer_id]


def _pending(app: FastAPI) -> list[dict[str, Any]]:
    return _table(app, "pending_deposit")


def _event_id(app: FastAPI, vendor: Vendor, person: Person, key: str = KEY) -> str:
    vault = app.state.vault
    hashed = key_hash(vault, vendor_id=vendor.client_id, customer_id=person.id, idempotency_key=key)
    return event_id_for(vault, hashed)


def _without_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "id"}


@pytest.fixture
def away(app: FastAPI, ana: Person, vendor: Vendor) -> str:
    """ana lets the vendor add to her history (not read it), and logs out;
    returns the vendor's token."""
    token = _writer(ana, vendor)
    log_out(ana)
    return token


def test_a_deposit_while_the_customer_is_away_waits_sealed(
    app: FastAPI, ana: Person, vendor: Vendor, away: str
) -> None:
    r = _deposit(vendor, away)
    assert r.status_code == 201, r.text
    assert _events_of(app, ana.id) == []
    (row,) = _pending(app)
    assert sorted(row) == ["created_on", "customer_id", "id", "sealed"]
    assert row["customer_id"] == ana.id
    texts = [
        "Bertrand",
        "Ensaio",
        "Cegueira",
        "12.90",
        "EUR",
        "purchase",
        "2026-11-20",
        vendor.client_id,
        _event_id(app, vendor, ana),
    ]
    found = [t for t in texts if t.encode() in row["sealed"] or t.encode() in row["id"].encode()]
    assert found == []
    # The vendor's act is recorded when it happens, as for any deposit.
    assert [e.action for e in access_events(app, ana.id)] == ["write"]


def test_the_answer_is_the_same_whether_the_customer_is_away_or_present(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    present = _deposit(vendor, token, key=OTHER_KEY)
    assert present.status_code == 201, present.text
    assert _pending(app) == []
    log_out(ana)
    absent = _deposit(vendor, token)
    assert absent.status_code == 201, absent.text
    assert len(_pending(app)) == 1
    assert _without_id(absent.json()) == _without_id(present.json())
    assert sorted(absent.headers) == sorted(present.headers)
    assert absent.json()["id"] == pairwise_event_id(
        app.state.vault, vendor.client_id, _event_id(app, vendor, ana)
    )


def test_a_retry_while_away_gets_the_same_answer_and_a_changed_body_is_refused(
    app: FastAPI, ana: Person, vendor: Vendor, away: str
) -> None:
    first = _deposit(vendor, away)
    assert first.status_code == 201, first.text
    again = _deposit(vendor, away)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert_problem(
        _deposit(vendor, away, {**RECEIPT, "amount": "13.90"}), 422, "idempotency-key-reused"
    )
    assert len(_pending(app)) == 1


def test_the_next_log_in_folds_the_deposit_into_the_history_with_its_id(
    app: FastAPI, ana: Person, vendor: Vendor, away: str
) -> None:
    first = _deposit(vendor, away)
    (row,) = _pending(app)
    log_back_in(ana)
    assert _pending(app) == []
    (event,) = ana.client.get(f"{ME}/history").json()["items"]
    assert event["id"] == _event_id(app, vendor, ana)
    assert {k: event[k] for k in RECEIPT if k != "items"} == {
        k: v for k, v in RECEIPT.items() if k != "items"
    }
    assert event["source"] == f"vendor:{vendor.client_id}"
    assert event["created_at"][:10] == row["created_on"].isoformat()
    assert event["labels"] == []
    # On the change log, as a deposit's event is: the feed will carry it.
    changes = [
        (c["category"], c["record_id"], c["op"])
        for c in _table(app, "data_change")
        if c["customer_id"] == ana.id and c["category"] == "history"
    ]
    assert changes == [("history", event["id"], "put")]
    # Away again, a retry still gets the first answer.
    log_out(ana)
    again = _deposit(vendor, away)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()


def test_the_fold_happens_once(app: FastAPI, ana: Person, vendor: Vendor, away: str) -> None:
    assert _deposit(vendor, away).status_code == 201
    log_back_in(ana)
    log_out(ana)
    log_back_in(ana)
    assert len(_events_of(app, ana.id)) == 1
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1


def test_a_pending_deposit_that_does_not_open_is_kept_and_the_log_in_works(
    app: FastAPI, ana: Person, vendor: Vendor, away: str
) -> None:
    assert _deposit(vendor, away).status_code == 201
    (row,) = _pending(app)
    altered = row["sealed"][:-1] + bytes([row["sealed"][-1] ^ 1])
    with Session(app.state.engine) as session:
        session.exec(update(PendingDeposit).values(sealed=altered))
        session.commit()
    log_back_in(ana)
    assert _pending(app) == [{**row, "sealed": altered}]
    assert _events_of(app, ana.id) == []


def test_a_deposit_goes_straight_in_when_a_live_grant_reads_the_history(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor, "history:read history:write")
    log_out(ana)
    assert _deposit(vendor, token).status_code == 201
    assert _pending(app) == []
    (event,) = _events_of(app, ana.id)
    assert event["id"] == _event_id(app, vendor, ana)


def test_a_server_held_customers_deposit_goes_straight_in(
    app: FastAPI, settings: Settings, vendor: Vendor
) -> None:
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    bob = sign_up_and_log_in(app, "bob@example.org")
    app.state.settings = settings
    token = _writer(bob, vendor)
    log_out(bob)
    assert _deposit(vendor, token).status_code == 201
    assert _pending(app) == []
    (event,) = _events_of(app, bob.id)
    assert event["id"] == _event_id(app, vendor, bob)


def test_erasure_removes_pending_deposits(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, away: str
) -> None:
    assert _deposit(vendor, away).status_code == 201
    assert len(_pending(app)) == 1
    with Session(app.state.engine) as session:
        accounts.erase(
            session=session,
            vault=app.state.vault,
            settings=settings,
            customer_id=ana.id,
            on_erase=hooks.ON_ERASE,
        )
    assert _pending(app) == []


def test_a_customer_from_before_gets_a_key_pair_at_log_in_and_then_deposits_wait(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    log_out(ana)
    with Session(app.state.engine) as session:
        session.exec(
            update(Customer)
            .where(col(Customer.id) == ana.id)
            .values(deposit_public_key=None, deposit_private_key=None)
        )
        session.commit()
    # No key to seal to: the deposit fails as every deposit to such a
    # customer did before, and spends no key.
    assert_problem(_deposit(vendor, token), 500, "key-unavailable")
    assert _table(app, "vendor_deposit") == []
    log_back_in(ana)
    log_out(ana)
    assert _deposit(vendor, token).status_code == 201
    assert len(_pending(app)) == 1
    log_back_in(ana)
    (event,) = ana.client.get(f"{ME}/history").json()["items"]
    assert event["id"] == _event_id(app, vendor, ana)


def test_a_sealed_box_opens_only_for_its_customer_with_their_root_key() -> None:
    root, other_root = aead.new_key(), aead.new_key()
    public_key, private_key = sealed_box.new_key_pair("ana", root)
    sealed = sealed_box.seal(public_key, "ana", b"a receipt")
    assert sealed_box.open_sealed(root, private_key, "ana", sealed) == b"a receipt"
    with pytest.raises(aead.SealError):
        sealed_box.open_sealed(other_root, private_key, "ana", sealed)
    # Moved to another customer, even one holding the very same private
    # key: the HPKE info binds the customer.
    raw = aead.open_sealed(root, private_key, sealed_box._private_aad("ana"))
    as_bob = aead.seal(root, raw, sealed_box._private_aad("bob"))
    with pytest.raises(aead.SealError):
        sealed_box.open_sealed(root, as_bob, "bob", sealed)
    with pytest.raises(aead.SealError):
        sealed_box.open_sealed(root, private_key, "ana", sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_a_customer_logged_in_but_idle_gets_the_deposit_at_their_next_request(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = _writer(ana, vendor)
    # ana stays logged in, but makes no request for longer than this
    # process holds her root key (UNLOCK_SECONDS): it holds it no more.
    app.state.vault.lock(ana.id)
    r = _deposit(vendor, token)
    assert r.status_code == 201, r.text
    assert len(_pending(app)) == 1
    # Her next request, with the same session, folds it: no new log-in.
    (item,) = ana.client.get(f"{ME}/history").json()["items"]
    assert (item["type"], item["occurred_at"]) == (RECEIPT["type"], RECEIPT["occurred_at"])
    assert _pending(app) == []
    # Once: the requests after it find nothing waiting.
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1
    assert len(_events_of(app, ana.id)) == 1


def test_a_request_within_the_held_time_does_not_look_for_deposits(
    app: FastAPI, ana: Person, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vrm.history import pending

    looked: list[str] = []
    monkeypatch.setattr(pending, "waiting", lambda session, customer_id: looked.append(customer_id))
    app.state.vault.lock(ana.id)
    assert ana.client.get(f"{ME}/history").status_code == 200
    assert ana.client.get(f"{ME}/history").status_code == 200
    # The first request presented the root key anew; the second found it held.
    assert looked == [ana.id]
