"""Incremental history reads (vrm/vendor_api/events.py) through the API:
the whole body a page answers, and where a page ends. Each test pins a
rule a surviving mutant showed nothing held in place (``make mutate``,
docs/testing.md)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlmodel import Session, col, select

from consent.grants.models import Grant
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import ME, WHEN, add_event, history_page
from vrm.keys.pairwise import pairwise_event_id, pairwise_subject


def _shared(app: FastAPI, vendor: Vendor, event_id: str, n: int) -> dict[str, Any]:
    return {
        "id": pairwise_event_id(app.state.vault, vendor.client_id, event_id),
        "vendor": "Bertrand Books",
        "type": "purchase",
        "occurred_at": WHEN.format(n),
        "items": [],
        "labels": [],
        "notes": f"event {n}",
    }


def test_a_page_holding_exactly_its_limit_is_the_last_and_says_whose_it_is(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    one = add_event(ana, occurred_at=WHEN.format(1), notes="event 1")
    add_event(ana, occurred_at=WHEN.format(2), notes="secret", labels=["private"])
    gone = add_event(ana, occurred_at=WHEN.format(3), notes="event 3")
    assert ana.client.delete(f"{ME}/history/{gone}").status_code == 204
    two = add_event(ana, occurred_at=WHEN.format(4), notes="event 4")
    t = tokens_for(ana, vendor, "history:read")
    with Session(app.state.engine) as session:
        grant = session.exec(select(Grant).where(col(Grant.customer_id) == ana.id)).one()

    page = history_page(vendor, t["access_token"], limit=2)
    assert page == {
        "subject": pairwise_subject(app.state.vault, vendor.client_id, ana.id),
        "grant_id": grant.id,
        "purpose": grant.purpose,
        # Neither the private event nor the deleted one, not even by id.
        "history": [_shared(app, vendor, one, 1), _shared(app, vendor, two, 4)],
        "deleted": [],
        "next_cursor": page["next_cursor"],
        "has_more": False,
    }
    # The largest page there is, and the smallest.
    assert history_page(vendor, t["access_token"], limit=200)["history"] == page["history"]
    first = history_page(vendor, t["access_token"], limit=1)
    assert (first["history"], first["has_more"]) == ([_shared(app, vendor, one, 1)], True)
    rest = history_page(vendor, t["access_token"], limit=1, since=first["next_cursor"])
    assert (rest["history"], rest["has_more"]) == ([], True)
    # The deleted event's row comes before the last event's: a vendor that
    # read from here may have heard of it, so it is told to drop it.
    assert rest["deleted"] == [pairwise_event_id(app.state.vault, vendor.client_id, gone)]
    last = history_page(vendor, t["access_token"], limit=1, since=rest["next_cursor"])
    assert (last["history"], last["deleted"], last["has_more"]) == (
        [_shared(app, vendor, two, 4)],
        [],
        False,
    )
    done = history_page(vendor, t["access_token"], limit=1, since=last["next_cursor"])
    assert (done["history"], done["deleted"], done["has_more"]) == ([], [], False)


def test_a_read_holds_only_its_own_customers_events(
    app: FastAPI, ana: Person, bob: Person, vendor: Vendor
) -> None:
    mine = add_event(ana, occurred_at=WHEN.format(1), notes="event 1")
    add_event(bob, occurred_at=WHEN.format(2), notes="bob's")
    t = tokens_for(ana, vendor, "history:read")
    first = history_page(vendor, t["access_token"], limit=10)
    assert first["history"] == [_shared(app, vendor, mine, 1)]
    # Bob's changes after the cursor: none of them reaches Ana's vendor,
    # not even as an id to drop.
    gone = add_event(bob, occurred_at=WHEN.format(3), notes="bob's too")
    assert bob.client.delete(f"{ME}/history/{gone}").status_code == 204
    add_event(bob, occurred_at=WHEN.format(4), notes="bob's last")
    after = history_page(vendor, t["access_token"], limit=10, since=first["next_cursor"])
    assert (after["history"], after["deleted"], after["has_more"]) == ([], [], False)
