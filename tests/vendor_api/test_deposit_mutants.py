"""A vendor's deposit as recorded, and racing another with the same Idempotency-Key
(vrm/vendor_api/deposit.py): the loser of the race answers with the
winner's event, or a 409 if it cannot; never a second event, never a 500.
Each test pins a rule a surviving mutant showed nothing held in place
(``make mutate``, docs/testing.md)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import Session, select

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import ME, RECEIPT, access_events
from vrm.history.deposits import VendorDeposit
from vrm.vendor_api.models import AccessEvent

# The race can be lost in history.insert_event, not only at the commit:
# the change log's tick (vrm/feed/changes.py) autoflushes the event's
# INSERT. Both tests failed (500) before deposit.py caught it there too.


def _deposit(vendor: Vendor, token: str) -> Any:
    headers = {**bearer(token), "Idempotency-Key": "order-1001"}
    return vendor.client.post("/v1/history", json=RECEIPT, headers=headers)


def _unseen(monkeypatch: pytest.MonkeyPatch, times: int) -> None:
    """The next ``times`` reads of a deposit row find nothing: as if the
    other request committed it just after this one looked."""
    original = Session.get
    left = [times]

    def get(self: Session, entity: Any, ident: Any, **kw: Any) -> Any:
        if entity is VendorDeposit and left[0] > 0:
            left[0] -= 1
            return None
        return original(self, entity, ident, **kw)

    monkeypatch.setattr(Session, "get", get)


def _stored(app: FastAPI) -> tuple[int, int]:
    with Session(app.state.engine) as session:
        deposits = len(session.exec(select(VendorDeposit)).all())
        writes = len(session.exec(select(AccessEvent)).all())
    return deposits, writes


def test_a_deposit_is_recorded_as_a_write_to_the_history(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = str(tokens_for(ana, vendor, "history:write")["access_token"])
    assert _deposit(vendor, token).status_code == 201
    assert [
        (e.vendor_id, e.categories, e.fields, e.action) for e in access_events(app, ana.id)
    ] == [(vendor.client_id, ["history"], ["history"], "write")]


def test_the_loser_of_a_race_answers_with_the_winners_event(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = str(tokens_for(ana, vendor, "history:write")["access_token"])
    first = _deposit(vendor, token)
    assert first.status_code == 201, first.text
    _unseen(monkeypatch, 1)
    again = _deposit(vendor, token)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1
    assert _stored(app) == (1, 1)  # the loser's write left nothing behind


def test_a_key_that_keeps_losing_is_a_409_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = str(tokens_for(ana, vendor, "history:write")["access_token"])
    assert _deposit(vendor, token).status_code == 201
    _unseen(monkeypatch, 2)
    r = _deposit(vendor, token)
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "urn:vrm:problem:conflict"
    assert len(ana.client.get(f"{ME}/history").json()["items"]) == 1
    assert _stored(app) == (1, 1)
