"""Which events a customer keeps private is theirs alone (issue 13, D1).

At rest, nothing outside the sealed event tells a private event from
another while it exists. Vendors hear of one only if they may have been
shown it: the event made private later reaches them as a deletion, the
one private from the start never, not even as an id or an empty page slot.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import (
    ME,
    PROFILE,
    Replica,
    add_event,
    as_replica,
    feed_page,
    feed_token,
    put,
    read,
    read_feed,
)
from vrm.feed.models import DataChange
from vrm.history.models import HistoryRecord
from vrm.keys.pairwise import pairwise_event_id

WHEN = "2026-11-0{}T10:00:00Z"
HISTORY = "/v1/data/history"


def _patch(person: Person, event_id: str, body: dict[str, Any]) -> None:
    r = person.client.patch(f"{ME}/history/{event_id}", json=body)
    assert r.status_code == 200, r.text


def _three_events(person: Person, seen: Any = None) -> dict[str, str]:
    """A plain event, one private from the start and one made private
    later, each written twice (so write counts cannot tell them apart).
    ``seen`` runs while the third is still visible (a vendor reading it)."""
    plain = add_event(person, occurred_at=WHEN.format(1), notes="plain")
    secret = add_event(person, occurred_at=WHEN.format(2), notes="secret", labels=["private"])
    later = add_event(person, occurred_at=WHEN.format(3), notes="later")
    if seen is not None:
        seen()
    _patch(person, plain, {"rating": 4})
    _patch(person, secret, {"rating": 4})
    _patch(person, later, {"labels": ["private"]})
    return {"plain": plain, "secret": secret, "later": later}


def _truth(vendor: Vendor, token: str) -> dict[str, Any]:
    body = read(vendor, token).json()
    return {body["subject"]: as_replica(body)}


def _mentions(app: FastAPI, event_id: str) -> list[tuple[str, tuple[Any, ...]]]:
    """Every row of every table that names the event, with what differs
    between any two events anyway (ids, positions, times, ciphertext)
    masked: what a thief with the database could tell the event by."""
    found = []
    with Session(app.state.engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                if event_id not in row:
                    continue
                masked = tuple(
                    "<event>"
                    if value == event_id
                    else "<bytes>"
                    if isinstance(value, bytes)
                    else "<time>"
                    if isinstance(value, datetime)
                    else "<seq>"
                    if column.name == "seq"
                    else value
                    for column, value in zip(table.columns, row, strict=True)
                )
                found.append((table.name, masked))
    return sorted(found, key=repr)


def test_the_database_cannot_tell_a_private_event_from_another(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    tokens_for(ana, vendor, "history:read")
    events = _three_events(ana, seen=lambda: read_feed(vendor, token))
    rows = {name: _mentions(app, event_id) for name, event_id in events.items()}
    assert rows["plain"] == rows["secret"] == rows["later"]
    assert [table for table, _ in rows["plain"]] == ["data_change", "history_record"]


def _ids(app: FastAPI, vendor: Vendor, events: dict[str, str]) -> dict[str, str]:
    """The pairwise id the vendor knows each event by."""
    return {
        name: pairwise_event_id(app.state.vault, vendor.client_id, event_id)
        for name, event_id in events.items()
    }


def _ops(app: FastAPI) -> dict[str, str]:
    with Session(app.state.engine) as session:
        rows = session.scalars(select(DataChange).where(DataChange.category == "history")).all()
    return {row.record_id: row.op for row in rows}


def test_the_feed_drops_an_event_made_private_and_never_names_one_private_all_along(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    t = tokens_for(ana, vendor, "history:read")
    seen: list[Any] = []
    events = _three_events(ana, seen=lambda: seen.extend(read_feed(vendor, token)))
    before, cursors = seen
    ids = _ids(app, vendor, events)
    # What the vendor held: the snapshot, then the plain event and the one
    # made private later; never the secret one.
    assert [(i["type"], i["data"]["notes"]) for i in before[1:]] == [
        ("upsert", "plain"),
        ("upsert", "later"),
    ]
    items, _ = read_feed(vendor, token, cursors[-1])
    assert [(i["type"], i.get("event_id") or i["data"]["id"]) for i in items] == [
        ("upsert", ids["plain"]),
        ("delete", ids["later"]),
    ]
    assert items[0]["data"]["rating"] == 4
    assert Replica().apply(before + items).data == _truth(vendor, t["access_token"])
    everything, _ = read_feed(vendor, token)
    assert ids["secret"] not in str(everything)
    assert "secret" not in str(everything)


def test_deleting_tells_vendors_only_of_events_they_may_hold(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    tokens_for(ana, vendor, "history:read")
    events = _three_events(ana)
    _, cursors = read_feed(vendor, token)
    for event_id in events.values():
        assert ana.client.delete(f"{ME}/history/{event_id}").status_code == 204
    ids = _ids(app, vendor, events)
    items, _ = read_feed(vendor, token, cursors[-1])
    assert [(i["type"], i["event_id"]) for i in items] == [
        ("delete", ids["plain"]),
        ("delete", ids["later"]),
    ]
    # The one never shown leaves no row: nothing says it ever was.
    assert _ops(app) == {events["plain"]: "delete", events["later"]: "delete"}


def test_a_private_change_takes_no_place_on_a_feed_page(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    """A page of one item is never empty while there is more, whatever
    the customer keeps private in between; a vendor without the history
    grant sees the same pages either way."""
    token = feed_token(vendor)
    tokens_for(ana, vendor, "history:read")
    tokens_for(ana, vendor, "profile.email:read", purpose="dpv:Marketing", prompt="consent")
    _, cursors = read_feed(vendor, token)
    for n in range(1, 4):
        add_event(ana, occurred_at=WHEN.format(n), notes=f"secret {n}", labels=["private"])
    put(ana, "profile", {**PROFILE, "email": "one@example.net"})
    add_event(ana, occurred_at=WHEN.format(5), notes="plain")
    add_event(ana, occurred_at=WHEN.format(6), notes="secret 4", labels=["private"])
    first = feed_page(vendor, token, cursors[-1], limit=1)
    assert [i["data"] for i in first["items"]] == [{"email": "one@example.net"}]
    assert first["has_more"] is True
    second = feed_page(vendor, token, first["next_cursor"], limit=1)
    assert [i["data"]["notes"] for i in second["items"]] == ["plain"]
    assert second["has_more"] is False
    assert feed_page(vendor, token, second["next_cursor"], limit=1)["items"] == []


def _history_pages(vendor: Vendor, token: str, since: str | None, limit: int) -> list[Any]:
    pages = []
    params: dict[str, Any] = {"limit": limit}
    if since is not None:
        params["since"] = since
    while True:
        r = vendor.client.get(HISTORY, params=params, headers=bearer(token))
        assert r.status_code == 200, r.text
        pages.append(r.json())
        params["since"] = pages[-1]["next_cursor"]
        if not pages[-1]["has_more"]:
            return pages


def test_history_reads_drop_an_event_made_private_and_never_name_one_private_all_along(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor, "history:read")
    token = t["access_token"]
    seen: list[Any] = []
    events = _three_events(ana, seen=lambda: seen.extend(_history_pages(vendor, token, None, 1)))
    ids = _ids(app, vendor, events)
    assert [[e["notes"] for e in page["history"]] for page in seen] == [["plain"], ["later"]]
    # Incrementally, one per page and no page empty: the plain event
    # changed, the one made private is to be dropped.
    pages = _history_pages(vendor, token, seen[-1]["next_cursor"], 1)
    assert [([e["id"] for e in p["history"]], p["deleted"]) for p in pages] == [
        ([ids["plain"]], []),
        ([], [ids["later"]]),
    ]
    # From the start: only what the vendor may see, one per page.
    pages = _history_pages(vendor, token, None, 1)
    assert [([e["id"] for e in p["history"]], p["deleted"]) for p in pages] == [
        ([ids["plain"]], [])
    ]
    assert read(vendor, token, HISTORY).json()["history"] == pages[0]["history"]


def test_an_event_that_cannot_be_opened_can_still_be_deleted_and_vendors_are_told(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    tokens_for(ana, vendor, "history:read")
    event_id = add_event(ana, occurred_at=WHEN.format(1), notes="damaged", labels=["private"])
    _, cursors = read_feed(vendor, token)
    with Session(app.state.engine) as session:
        row = session.scalars(select(HistoryRecord).where(HistoryRecord.id == event_id)).one()
        row.ciphertext = row.ciphertext[:-1] + bytes([row.ciphertext[-1] ^ 1])
        session.add(row)
        session.commit()
    assert ana.client.get(f"{ME}/history/{event_id}").status_code == 500
    assert ana.client.delete(f"{ME}/history/{event_id}").status_code == 204
    # Whether a vendor was ever shown it is sealed in what cannot be read:
    # the vendors are told, as of any event they might hold.
    assert _ops(app) == {event_id: "delete"}
    items, _ = read_feed(vendor, token, cursors[-1])
    assert [(i["type"], i["event_id"]) for i in items] == [
        ("delete", _ids(app, vendor, {"e": event_id})["e"])
    ]
