"""GET /v1/feed: every change a vendor may see, across its customers."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlmodel import Session, update

from consent.grants.models import Grant
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import (
    ME,
    PREFERENCES,
    PROFILE,
    Replica,
    access_events,
    add_event,
    as_replica,
    feed_page,
    feed_token,
    put,
    read,
    read_feed,
)
from tests.vendor_api.test_cursors import FORGED
from vrm.dbtypes import utcnow
from vrm.storage.statements import Statement

WHEN = "2026-11-0{}T10:00:00Z"


def _of(items: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [i for i in items if i["type"] == kind]


def _truth(vendor: Vendor, token: str) -> dict[str, Any]:
    r = read(vendor, token)
    assert r.status_code == 200, r.text
    body = r.json()
    return {body["subject"]: as_replica(body)}


# -- who may read it ----------------------------------------------------------


def test_the_feed_needs_a_client_credentials_token_with_feed_read(
    ana_profile: Person, vendor: Vendor
) -> None:
    r = vendor.client.get("/v1/feed")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm"'
    r = vendor.client.get("/v1/feed", headers=bearer("vat_unknown"))
    assert r.status_code == 401
    customer_token = tokens_for(ana_profile, vendor, "profile:read")["access_token"]
    r = vendor.client.get("/v1/feed", headers=bearer(customer_token))
    assert_problem(r, 403, "insufficient-scope", scope="feed:read")
    assert 'scope="feed:read"' in r.headers["www-authenticate"]
    assert feed_page(vendor, feed_token(vendor))["items"] != []


@pytest.mark.parametrize("cursor", ["garbage", "djEuLTE", "djEuMS5aWg"])
def test_a_cursor_we_did_not_give_out_is_a_400_problem(vendor: Vendor, cursor: str) -> None:
    r = vendor.client.get("/v1/feed", params={"cursor": cursor}, headers=bearer(feed_token(vendor)))
    assert_problem(r, 400, "bad-request", detail=FORGED)


def test_limit_out_of_range_is_refused(vendor: Vendor) -> None:
    token = feed_token(vendor)
    for limit in (0, 1001):
        r = vendor.client.get("/v1/feed", params={"limit": limit}, headers=bearer(token))
        assert r.status_code == 422, r.text


# -- what it carries ----------------------------------------------------------


def test_a_new_grant_arrives_as_a_snapshot_of_exactly_the_granted_data(
    app: FastAPI, ana_profile: Person, bob: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    add_event(ana_profile, occurred_at=WHEN.format(1), notes="shared")
    add_event(ana_profile, occurred_at=WHEN.format(2), notes="hidden", labels=["private"])
    put(bob, "preferences", PREFERENCES)
    ana_t = tokens_for(ana_profile, vendor, "profile.email:read history:read")
    bob_t = tokens_for(bob, vendor, "preferences:read")
    tokens_for(ana_profile, other_vendor, "profile:read")  # not this vendor's

    items, _ = read_feed(vendor, feed_token(vendor))
    snapshots = _of(items, "snapshot")
    assert [s["grant_id"] for s in snapshots] == [ana_t["grant_id"], bob_t["grant_id"]]
    ana_snap, bob_snap = snapshots
    assert ana_snap["data"]["profile"] == {"email": PROFILE["email"]}
    assert [e["notes"] for e in ana_snap["data"]["history"]] == ["shared"]
    assert set(ana_snap["data"]) == {"profile", "history"}
    assert bob_snap["data"] == {
        "preferences": read(vendor, bob_t["access_token"]).json()["preferences"]
    }
    assert "hidden" not in str(items)
    assert PROFILE["phone"] not in str(items)
    # Pairwise subjects: the same the vendor sees on /v1/data, not our ids.
    assert ana_snap["subject"] == read(vendor, ana_t["access_token"]).json()["subject"]
    assert ana_profile.id not in str(items)
    assert bob.id not in str(items)
    # The other vendor's feed has only its own grant.
    other = read_feed(other_vendor, feed_token(other_vendor))[0]
    assert [i["type"] for i in other] == ["snapshot"]
    assert other[0]["subject"] != ana_snap["subject"]


def test_every_read_through_the_feed_is_an_access_event(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read history:read")
    before = len(access_events(app, ana_profile.id))
    read_feed(vendor, feed_token(vendor))
    events = access_events(app, ana_profile.id)[before:]
    assert [(e.grant_id, e.categories, e.fields, e.action) for e in events] == [
        (t["grant_id"], ["profile", "history"], ["history", "profile.email"], "read")
    ]


def test_changes_after_the_snapshot_come_projected_to_the_grant(
    ana_profile: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    keep = add_event(ana_profile, occurred_at=WHEN.format(1), notes="keep")
    gone = add_event(ana_profile, occurred_at=WHEN.format(2), notes="gone")
    t = tokens_for(ana_profile, vendor, "profile.email:read history:read")
    items, cursors = read_feed(vendor, token)
    replica = Replica().apply(items)

    r = ana_profile.client.patch(f"{ME}/profile", json={"phone": "+351 900 000 000"})
    assert r.status_code == 200
    r = ana_profile.client.patch(f"{ME}/profile", json={"email": "new@example.net"})
    assert r.status_code == 200
    add_event(ana_profile, occurred_at=WHEN.format(3), notes="new")
    add_event(ana_profile, occurred_at=WHEN.format(4), notes="secret", labels=["private"])
    assert ana_profile.client.delete(f"{ME}/history/{gone}").status_code == 204
    r = ana_profile.client.patch(f"{ME}/history/{keep}", json={"labels": ["gift"]})
    assert r.status_code == 200
    put(ana_profile, "preferences", {"dietary": ["vegan"]})  # not granted

    changes, _ = read_feed(vendor, token, cursors[-1])
    kinds = [(i["type"], i.get("category")) for i in changes]
    assert kinds == [
        ("upsert", "profile"),  # compacted: one item for both profile writes
        ("upsert", "history"),
        ("delete", "history"),
        ("upsert", "history"),
    ]
    assert changes[0]["data"] == {"email": "new@example.net"}
    assert changes[3]["data"]["labels"] == ["gift"]
    assert "secret" not in str(changes)
    assert "vegan" not in str(changes)
    assert Replica().apply(items + changes).data == _truth(vendor, t["access_token"])
    assert replica.apply(changes).data == _truth(vendor, t["access_token"])


def test_narrowing_sends_a_tombstone_for_what_was_taken_away(
    ana_profile: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    t = tokens_for(ana_profile, vendor, "profile:read history:read")
    items, cursors = read_feed(vendor, token)
    r = ana_profile.client.patch(
        f"{ME}/grants/{t['grant_id']}", json={"scopes": ["profile.email:read"]}
    )
    assert r.status_code == 200, r.text
    put(ana_profile, "profile", {**PROFILE, "given_name": "Anabela"})
    changes, _ = read_feed(vendor, token, cursors[-1])
    tombstone, upsert = changes
    assert tombstone["type"] == "tombstone"
    assert tombstone["reason"] == "narrowed"
    assert tombstone["subject"] == items[0]["subject"]
    assert tombstone["fields"] == sorted(
        ["history"] + [f"profile.{f}" for f in PROFILE if f != "email"] + ["profile.birth_date"]
    )
    assert upsert["data"] == {"email": PROFILE["email"]}
    assert "Anabela" not in str(changes)
    assert Replica().apply(items + changes).data == _truth(vendor, t["access_token"])


def test_revoking_sends_a_tombstone_and_nothing_after_it(
    ana_profile: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    t = tokens_for(ana_profile, vendor, "profile.email:read history:read")
    items, cursors = read_feed(vendor, token)
    put(ana_profile, "profile", {**PROFILE, "email": "before@example.net"})
    assert ana_profile.client.delete(f"{ME}/grants/{t['grant_id']}").status_code == 204
    put(ana_profile, "profile", {**PROFILE, "email": "after@example.net"})
    add_event(ana_profile, occurred_at=WHEN.format(5), notes="after")
    # Read from the very start too: nothing of the customer's data at all.
    for cursor in (None, cursors[-1]):
        changes, _ = read_feed(vendor, token, cursor)
        assert [i["type"] for i in changes] == ["tombstone"]
        assert changes[0]["reason"] == "revoked"
        assert changes[0]["fields"] == ["history", "profile.email"]
        assert "example.net" not in str(changes)
        assert "after" not in str(changes)
    assert Replica().apply(items + changes).data == {}


def test_an_expired_grant_sends_one_tombstone(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    items, cursors = read_feed(vendor, token)
    with Session(app.state.engine) as session:
        session.exec(
            update(Grant)
            .where(Grant.id == t["grant_id"])  # type: ignore[arg-type]
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    put(ana_profile, "profile", {**PROFILE, "email": "late@example.net"})
    changes, later = read_feed(vendor, token, cursors[-1])
    assert [(i["type"], i["reason"]) for i in changes] == [("tombstone", "expired")]
    assert changes[0]["fields"] == ["profile.email"]
    # Reading again adds no second tombstone.
    assert read_feed(vendor, token, later[-1])[0] == []
    assert [i["type"] for i in read_feed(vendor, token)[0]] == ["tombstone"]


def test_an_erased_account_sends_a_tombstone_under_the_same_subject(
    app: FastAPI, vendor: Vendor
) -> None:
    cleo = sign_up_and_log_in(app, "cleo@example.org")
    put(cleo, "profile", PROFILE)
    token = feed_token(vendor)
    tokens_for(cleo, vendor, "profile.email:read")
    items, cursors = read_feed(vendor, token)
    r = cleo.client.request("DELETE", f"{ME}", json={"password": cleo.password})
    assert r.status_code == 204, r.text
    changes, _ = read_feed(vendor, token, cursors[-1])
    assert [(i["type"], i["reason"]) for i in changes] == [("tombstone", "account_deleted")]
    assert changes[0]["subject"] == items[0]["subject"]
    assert cleo.id not in str(changes)
    assert Replica().apply(items + changes).data == {}


# -- cursors ------------------------------------------------------------------


def _long_run(app: FastAPI, vendor: Vendor, people: int = 3) -> list[tuple[Person, Any]]:
    granted = []
    for n in range(people):
        person = sign_up_and_log_in(app, f"p{n}@example.org")
        put(person, "profile", {**PROFILE, "email": f"p{n}@example.net"})
        t = tokens_for(person, vendor, "profile.email:read history:read")
        granted.append((person, t))
        for k in range(1, 4):
            add_event(person, occurred_at=WHEN.format(k), notes=f"{n}-{k}")
    first, _ = granted[0]
    put(first, "profile", {**PROFILE, "email": "first@example.net"})
    event = first.client.get(f"{ME}/history").json()["items"][0]["id"]
    assert first.client.delete(f"{ME}/history/{event}").status_code == 204
    last, last_t = granted[-1]
    r = last.client.patch(f"{ME}/grants/{last_t['grant_id']}", json={"scopes": ["history:read"]})
    assert r.status_code == 200
    return granted


def test_resuming_from_every_cursor_loses_and_repeats_nothing(app: FastAPI, vendor: Vendor) -> None:
    _long_run(app, vendor)
    token = feed_token(vendor)
    whole, _ = read_feed(vendor, token, limit=1000)
    one_by_one, cursors = read_feed(vendor, token, limit=1)
    assert one_by_one == whole
    assert len({i["id"] for i in whole}) == len(whole)
    for n, cursor in enumerate(cursors):
        rest, _ = read_feed(vendor, token, cursor, limit=3)
        assert rest == whole[n + 1 :], f"resuming after item {n}"


def test_paging_while_customers_write_converges_on_the_truth(app: FastAPI, vendor: Vendor) -> None:
    granted = _long_run(app, vendor, people=2)
    token = feed_token(vendor)
    stop = threading.Event()
    errors: list[str] = []

    def write() -> None:
        n = 0
        while not stop.is_set() and n < 40:
            person, _ = granted[n % 2]
            r = person.client.post(
                f"{ME}/history",
                json={
                    "vendor": "V",
                    "type": "visit",
                    "occurred_at": WHEN.format(9),
                    "notes": f"w{n}",
                },
            )
            if r.status_code != 201:
                errors.append(r.text)
            put(person, "profile", {**PROFILE, "email": f"w{n}@example.net"})
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    replica = Replica()
    cursor = None
    try:
        while writer.is_alive():
            page = feed_page(vendor, token, cursor, limit=2)
            replica.apply(page["items"])
            cursor = page["next_cursor"]
    finally:
        stop.set()
        writer.join()
    assert errors == []
    rest, _ = read_feed(vendor, token, cursor, limit=2)
    replica.apply(rest)
    truth: dict[str, Any] = {}
    for _, t in granted:
        truth.update(_truth(vendor, t["access_token"]))
    assert replica.data == truth
    assert sum(len(v.get("history", {})) for v in truth.values()) >= 40


def test_a_change_under_two_grants_comes_once_per_grant_even_across_pages(
    ana_profile: Person, vendor: Vendor
) -> None:
    token = feed_token(vendor)
    service = tokens_for(ana_profile, vendor, "profile.email:read")
    marketing = tokens_for(
        ana_profile, vendor, "profile:read", purpose="dpv:Marketing", prompt="consent"
    )
    assert service["grant_id"] != marketing["grant_id"]
    _, cursors = read_feed(vendor, token)
    put(ana_profile, "profile", {**PROFILE, "email": "both@example.net"})
    whole, _ = read_feed(vendor, token, cursors[-1])
    assert sorted(i["grant_id"] for i in whole) == sorted(
        [service["grant_id"], marketing["grant_id"]]
    )
    by_grant = {i["grant_id"]: i["data"] for i in whole}
    assert by_grant[service["grant_id"]] == {"email": "both@example.net"}
    assert by_grant[marketing["grant_id"]]["family_name"] == PROFILE["family_name"]
    one_by_one, page_cursors = read_feed(vendor, token, cursors[-1], limit=1)
    assert one_by_one == whole
    rest, _ = read_feed(vendor, token, page_cursors[0], limit=1)
    assert rest == whole[1:]


def _statements_of(app: FastAPI, monkeypatch: pytest.MonkeyPatch, read: Any) -> int:
    """How many statements ``read()`` runs, through SQLAlchemy and on the
    driver's cursor (vrm/storage/statements.py), from a cold vault: no data
    key and no event view in its memory, as after a restart."""
    vault = app.state.vault
    vault._cache.clear()  # a restart's empty data key cache
    vault.derived.clear()
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    real_run, real_many = Statement._run, Statement.execute_many

    def run(self: Statement, conn: Any, params: Any) -> Any:
        counted()
        return real_run(self, conn, params)

    def many(self: Statement, conn: Any, rows: Any) -> None:
        counted()
        real_many(self, conn, rows)

    with monkeypatch.context() as m:
        m.setattr(Statement, "_run", run)
        m.setattr(Statement, "execute_many", many)
        event.listen(app.state.engine, "before_cursor_execute", counted)
        try:
            read()
        finally:
            event.remove(app.state.engine, "before_cursor_execute", counted)
    return count


def test_a_first_sync_reads_six_customers_in_the_statements_it_reads_two_in(
    app: FastAPI, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Their documents, data keys and histories are read for all of a page's
    # customers at once (vrm/vendor_api/feed_items.py, prefetch): a page of
    # a thousand snapshots must not cost thousands of round trips.
    people = [sign_up_and_log_in(app, f"c{n}@example.org") for n in range(6)]
    for n, person in enumerate(people):
        put(person, "profile", {**PROFILE, "email": f"c{n}@example.net"})
        put(person, "preferences", PREFERENCES)
        add_event(person, occurred_at=WHEN.format(1), notes=f"c{n}'s")
    token = feed_token(vendor)

    def first_sync() -> list[dict[str, Any]]:
        return read_feed(vendor, token)[0]

    for person in people[:2]:
        tokens_for(person, vendor, "profile:read preferences:read history:read")
    two = _statements_of(app, monkeypatch, first_sync)
    for person in people[2:]:
        tokens_for(person, vendor, "profile:read preferences:read history:read")
    six = _statements_of(app, monkeypatch, first_sync)

    items = first_sync()
    assert [i["type"] for i in items] == ["snapshot"] * 6
    assert sorted(i["data"]["profile"]["email"] for i in items) == [
        f"c{n}@example.net" for n in range(6)
    ]
    assert sorted(i["data"]["history"][0]["notes"] for i in items) == [f"c{n}'s" for n in range(6)]
    assert six == two
