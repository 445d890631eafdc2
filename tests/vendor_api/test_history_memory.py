"""What the vault keeps decrypted never outlives what may be shown
(vrm/keys/derived.py, vrm/vendor_api/projection.py ``shown_events``).

Each test reads first, so that the vault holds the vendor's view of every
event, then changes something and reads again at once: the narrowed,
revoked, relabelled, edited or deleted event must show as it is now, on
every path a vendor reads the history by, and in the customer's own
listing. Then: the memory is used (a second read opens nothing), it is per
vendor, and an erased customer leaves nothing in it.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem
from tests.vendor_api.helpers import (
    ME,
    WHEN,
    add_event,
    feed_page,
    feed_token,
    history_page,
    read,
)
from vrm.history import service as history
from vrm.keys.pairwise import pairwise_event_id
from vrm.vendor_api import projection

SCOPE = "profile:read history:read"


def _whole(vendor: Vendor, token: str) -> list[dict[str, Any]]:
    r = read(vendor, token)
    assert r.status_code == 200, r.text
    return list(r.json()["history"])


def _three(ana: Person) -> list[str]:
    return [
        add_event(
            ana,
            occurred_at=WHEN.format(n),
            notes=f"event {n}",
            items=[{"name": "Book", "amount": "9.90"}, {"name": "Card", "labels": ["gift"]}],
        )
        for n in (1, 2, 3)
    ]


def _patch(ana: Person, event_id: str, patch: dict[str, Any]) -> None:
    r = ana.client.patch(f"{ME}/history/{event_id}", json=patch)
    assert r.status_code == 200, r.text


def _notes(events: list[dict[str, Any]]) -> list[str]:
    return [e["notes"] for e in events]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the events opened (decrypted) from here on."""
    seen: list[str] = []
    real = history.open_stored

    def spy(conn: Any, vault: Any, rows: Any) -> Any:
        seen.extend(row.id for row in rows)
        return real(conn, vault, rows)

    monkeypatch.setattr(history, "open_stored", spy)
    return seen


def test_a_second_read_opens_nothing_and_a_change_opens_only_what_changed(
    app: FastAPI, ana: Person, vendor: Vendor, opened: list[str]
) -> None:
    ids = _three(ana)
    token = tokens_for(ana, vendor, SCOPE)["access_token"]
    # The consent page opened them to count what the vendor would see
    # (consent/preview.py): the vendor's reads are counted from here.
    opened.clear()
    first = _whole(vendor, token)
    assert sorted(opened) == sorted(ids)
    opened.clear()
    assert _whole(vendor, token) == first
    assert history_page(vendor, token, limit=10)["history"] == first[::-1]
    assert opened == []
    _patch(ana, ids[0], {"rating": 5})
    assert [e.get("rating") for e in _whole(vendor, token)] == [None, None, 5]
    assert opened == [ids[0]]


def test_without_the_memory_every_read_opens_every_event(
    app: FastAPI, ana: Person, vendor: Vendor, opened: list[str]
) -> None:
    app.state.vault.derived.max_bytes = 0
    ids = _three(ana)
    token = tokens_for(ana, vendor, SCOPE)["access_token"]
    opened.clear()  # the consent page's count (consent/preview.py)
    first = _whole(vendor, token)
    assert _whole(vendor, token) == first
    assert sorted(opened) == sorted(ids * 2)
    assert app.state.vault.derived.usage() == (0, 0)


def test_an_event_labelled_private_is_gone_from_the_very_next_read(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    ids = _three(ana)
    token = tokens_for(ana, vendor, SCOPE)["access_token"]
    feed = feed_token(vendor)
    assert _notes(_whole(vendor, token)) == ["event 3", "event 2", "event 1"]
    start = history_page(vendor, token, limit=10)
    synced = feed_page(vendor, feed)
    assert app.state.vault.derived.usage()[0] > 0

    _patch(ana, ids[1], {"labels": ["private"]})
    assert _notes(_whole(vendor, token)) == ["event 3", "event 1"]
    assert _notes(history_page(vendor, token, limit=10)["history"]) == ["event 1", "event 3"]
    later = history_page(vendor, token, since=start["next_cursor"], limit=10)
    dropped = pairwise_event_id(app.state.vault, vendor.client_id, ids[1])
    assert (later["history"], later["deleted"]) == ([], [dropped])
    items = feed_page(vendor, feed, synced["next_cursor"])["items"]
    assert [(i["type"], i["event_id"]) for i in items] == [("delete", dropped)]
    assert "event 2" not in str(items) + str(later)


def test_an_item_labelled_private_is_gone_from_the_very_next_read(
    ana: Person, vendor: Vendor
) -> None:
    ids = _three(ana)
    token = tokens_for(ana, vendor, SCOPE)["access_token"]
    assert [i["name"] for i in _whole(vendor, token)[2]["items"]] == ["Book", "Card"]
    _patch(
        ana,
        ids[0],
        {"items": [{"name": "Book", "amount": "9.90"}, {"name": "Card", "labels": ["private"]}]},
    )
    assert [i["name"] for i in _whole(vendor, token)[2]["items"]] == ["Book"]
    # In the order of change: the relabelled event comes last.
    changed = history_page(vendor, token, limit=10)["history"][-1]
    assert (changed["notes"], [i["name"] for i in changed["items"]]) == ("event 1", ["Book"])


def test_an_edit_and_a_delete_show_at_once(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    ids = _three(ana)
    token = tokens_for(ana, vendor, SCOPE)["access_token"]
    feed = feed_token(vendor)
    _whole(vendor, token)
    synced = feed_page(vendor, feed)

    _patch(ana, ids[2], {"notes": "edited"})
    r = ana.client.delete(f"{ME}/history/{ids[0]}")
    assert r.status_code == 204, r.text
    assert _notes(_whole(vendor, token)) == ["edited", "event 2"]
    assert _notes(history_page(vendor, token, limit=10)["history"]) == ["event 2", "edited"]
    items = feed_page(vendor, feed, synced["next_cursor"])["items"]
    assert [(i["type"], i.get("data", {}).get("notes")) for i in items] == [
        ("upsert", "edited"),
        ("delete", None),
    ]


def test_narrowing_the_history_away_or_revoking_ends_it_at_once(
    ana: Person, vendor: Vendor
) -> None:
    _three(ana)
    t = tokens_for(ana, vendor, SCOPE)
    assert len(_whole(vendor, t["access_token"])) == 3
    r = ana.client.patch(f"{ME}/grants/{t['grant_id']}", json={"scopes": ["profile:read"]})
    assert r.status_code == 200, r.text
    r = read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    assert "history" not in r.json()
    r = read(vendor, t["access_token"], "/v1/data/history")
    assert_problem(r, 403, "insufficient-scope", scope="history:read")

    t = tokens_for(ana, vendor, SCOPE, prompt="consent")
    assert len(_whole(vendor, t["access_token"])) == 3
    r = ana.client.delete(f"{ME}/grants/{t['grant_id']}")
    assert r.status_code == 204, r.text
    r = read(vendor, t["access_token"])
    assert_problem(r, 401, "invalid-token")
    assert "event" not in r.text


def test_each_vendor_gets_its_own_view_of_the_same_events(
    app: FastAPI, ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    ids = _three(ana)
    mine = _whole(vendor, tokens_for(ana, vendor, SCOPE)["access_token"])
    theirs = _whole(other_vendor, tokens_for(ana, other_vendor, SCOPE)["access_token"])
    vault = app.state.vault
    assert [e["id"] for e in mine] == [pairwise_event_id(vault, vendor.client_id, i) for i in ids][
        ::-1
    ]
    assert [e["id"] for e in theirs] == [
        pairwise_event_id(vault, other_vendor.client_id, i) for i in ids
    ][::-1]
    assert [{**e, "id": None} for e in mine] == [{**e, "id": None} for e in theirs]


def test_the_customers_own_listing_shows_a_relabel_at_once(ana: Person) -> None:
    ids = _three(ana)

    def gifts() -> list[str]:
        r = ana.client.get(f"{ME}/history", params={"label": "gift"})
        assert r.status_code == 200, r.text
        return [e["id"] for e in r.json()["items"]]

    assert gifts() == ids[::-1]  # every event has a gift item
    _patch(ana, ids[1], {"items": [{"name": "Book"}]})
    assert gifts() == [ids[2], ids[0]]
    _patch(ana, ids[1], {"labels": ["gift"], "notes": "now a gift itself"})
    r = ana.client.get(f"{ME}/history", params={"label": "gift", "limit": 1})
    assert [(e["id"], e["notes"]) for e in r.json()["items"]] == [(ids[2], "event 3")]
    page = ana.client.get(
        f"{ME}/history", params={"label": "gift", "cursor": r.json()["next_cursor"]}
    ).json()
    assert [(e["id"], e["notes"]) for e in page["items"]] == [
        (ids[1], "now a gift itself"),
        (ids[0], "event 1"),
    ]


def test_an_erased_customer_leaves_nothing_in_the_vaults_memory(
    app: FastAPI, ana: Person, bob: Person, vendor: Vendor
) -> None:
    _three(ana)
    add_event(bob, occurred_at=WHEN.format(4), notes="bob's")
    _whole(vendor, tokens_for(ana, vendor, SCOPE)["access_token"])
    _whole(vendor, tokens_for(bob, vendor, SCOPE)["access_token"])
    derived = app.state.vault.derived

    def held_for(customer_id: str) -> int:
        return sum(1 for key in list(derived._entries) if key[0] == customer_id)

    # Each event twice: the vendor's view, and her own, opened by the
    # consent page to count what the vendor would see (consent/preview.py).
    assert held_for(ana.id) == 6
    assert held_for(bob.id) == 2
    r = ana.client.request("DELETE", ME, json={"password": ana.password})
    assert r.status_code == 204, r.text
    assert held_for(ana.id) == 0
    assert held_for(bob.id) == 2


def test_a_kept_view_takes_about_its_length_in_memory() -> None:
    # The vault's memory is bounded by the views' lengths
    # (vrm/keys/derived.py); orjson's own bytes would each hold a 4 KiB
    # buffer whatever their length.
    event = {"vendor": "Bertrand Books", "type": "purchase", "occurred_at": WHEN.format(1)}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [projection.event_json({**event, "id": f"{n:024d}"}) for n in range(200)]
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    length = sum(map(len, kept))
    assert grown < 2 * length


def test_what_the_vault_keeps_of_a_vendors_view_is_out_of_the_collectors_sight(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # A full collection walks every object the collector tracks: tens of
    # thousands of kept views would be walked again and again.
    for n in range(1, 10):
        add_event(ana, occurred_at=WHEN.format(n), notes=f"event {n}")
    token = tokens_for(ana, vendor, SCOPE)["access_token"]
    first = _whole(vendor, token)
    entries = list(app.state.vault.derived._entries.items())
    kept = [entry for key, entry in entries if key[1] == "vendor-event"]
    assert len(kept) == 9
    for _ in range(3):  # each pass untracks one more level of plain tuples
        gc.collect()
    assert [gc.is_tracked(entry) for entry in kept] == [False] * 9
    assert _whole(vendor, token) == first
