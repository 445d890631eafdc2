"""``vrm-connector sync``: the sink ends holding exactly what the customers
grant now, through changes, narrowing, deletions and revocation; a resync
from nothing ends the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI

from connectors import sync
from tests.conftest import Person
from tests.connectors.conftest import Connected
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import PREFERENCES, PROFILE, add_event, put

GRANTS = "/api/v1/me/grants"
SCOPE = "profile.email:read profile.given_name:read preferences:read history:read"


def _sync(c: Connected, limit: int = 100) -> sync.Progress:
    return sync.run(c.config, c.store, c.sink, c.mapping, c.state, limit=limit)


def _held(c: Connected) -> dict[str, Any]:
    return {
        s: {"contact": c.sink.find(s), "events": sorted(e.event_id for e in c.sink.events_of(s))}
        for s in sorted(c.sink.subjects())
    }


def _subject(vendor: Vendor, token: str) -> str:
    info = vendor.introspect(token)
    return str(info["sub"])


def test_the_sink_follows_the_customers_grants(
    app: FastAPI, ana: Person, bob: Person, vendor: Vendor, connected: Connected, tmp_path: Path
) -> None:
    put(ana, "profile", PROFILE)
    put(ana, "preferences", PREFERENCES)
    put(bob, "profile", {"email": "bob@example.org", "given_name": "Bob"})
    first = add_event(ana, occurred_at="2026-11-01T10:00:00Z")
    second = add_event(ana, occurred_at="2026-11-02T10:00:00Z")
    ana_grant = tokens_for(ana, vendor, SCOPE)
    bob_grant = tokens_for(bob, vendor, "profile.email:read")
    ana_subject = _subject(vendor, ana_grant["access_token"])
    bob_subject = _subject(vendor, bob_grant["access_token"])

    done = _sync(connected, limit=1)  # a page per item: the cursor moves often
    assert done.items >= 2
    contact = connected.sink.find(ana_subject)
    assert contact is not None
    assert contact["email"] == PROFILE["email"]
    assert contact["given_name"] == "Ana"
    assert contact["family_name"] is None  # not granted: never held
    assert contact["phone"] is None
    held = contact["preferences"]
    assert {k: held[k] for k in PREFERENCES} == PREFERENCES
    # Under the vendor's own ids for them (pairwise), not the customer's.
    held_events = connected.sink.events_of(ana_subject)
    assert len(held_events) == 2
    assert {first, second}.isdisjoint(e.event_id for e in held_events)
    bob_contact = connected.sink.find(bob_subject)
    assert bob_contact is not None
    assert bob_contact["email"] == "bob@example.org"
    assert bob_contact["given_name"] is None  # Bob granted the email only

    # Nothing new: nothing applied, the sink unchanged.
    before = _held(connected)
    assert _sync(connected).ops == 0
    assert _held(connected) == before

    # A change; a narrowing (the email goes); an event deleted.
    put(ana, "profile", {**PROFILE, "given_name": "Ana Maria"})
    r = ana.client.patch(
        f"{GRANTS}/{ana_grant['grant_id']}",
        json={"scopes": ["profile.given_name:read", "preferences:read", "history:read"]},
    )
    assert r.status_code == 200, r.text
    assert ana.client.delete(f"/api/v1/me/history/{second}").status_code == 204
    _sync(connected)
    contact = connected.sink.find(ana_subject)
    assert contact is not None
    assert contact["given_name"] == "Ana Maria"
    assert contact["email"] is None
    left = connected.sink.events_of(ana_subject)
    assert len(left) == 1
    assert left[0].data["occurred_at"].startswith("2026-11-01")

    # Bob revokes: his contact goes.
    assert bob.client.delete(f"{GRANTS}/{bob_grant['grant_id']}").status_code == 204
    _sync(connected)
    assert connected.sink.find(bob_subject) is None
    assert connected.sink.subjects() == [ana_subject]

    # A sync from nothing ends holding the same.
    fresh = Connected(app, vendor, tmp_path / "fresh")
    try:
        _sync(fresh)
        assert _held(fresh) == _held(connected)
    finally:
        fresh.close()
    assert connected.state.get("cursor") is not None
    assert connected.state.counts()["items_applied"] >= done.items
