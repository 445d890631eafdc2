"""Property: whatever customers write, grant, narrow, revoke or let expire,
and however the vendor reads (per customer, incrementally, or through the
feed), the vendor never receives a value outside an active grant, never a
private event, and every value it receives is covered by an access event.

Every value a customer writes is a unique marker, so "did the vendor get
something it should not have" is a substring search over what it received.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select, update

from consent.grants.models import Grant
from consent.policy import field_names, parse_scope
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import ME, feed_token
from vrm.dbtypes import utcnow
from vrm.vendor_api.models import AccessEvent

# The fields the test writes, and how.
WRITABLE = {
    "profile.given_name": ("profile", "given_name", lambda m: m),
    "profile.family_name": ("profile", "family_name", lambda m: m),
    "profile.email": ("profile", "email", lambda m: f"{m}@example.net"),
    "preferences.dietary": ("preferences", "dietary", lambda m: [m]),
    "preferences.accessibility": ("preferences", "accessibility", lambda m: [m]),
}
SCOPES = [
    "profile.given_name:read",
    "profile.email:read",
    "profile:read",
    "preferences.dietary:read",
    "preferences:read",
    "history:read",
]
LABELS = ["gift", "not_for_me", "private"]
_serial = itertools.count()


@dataclass
class Customer:
    person: Person
    token: str | None = None
    grant_id: str | None = None
    fields: set[str] = field(default_factory=set)  # what the grant gives now
    active: bool = False
    events: dict[str, str] = field(default_factory=dict)  # event id -> marker


@dataclass
class World:
    app: FastAPI
    vendor: Vendor
    customers: list[Customer]
    # marker -> (customer index, field name, event id or None)
    markers: dict[str, tuple[int, str, str | None]] = field(default_factory=dict)
    private: set[str] = field(default_factory=set)  # event ids labelled private now
    feed_token: str = ""
    feed_cursor: str | None = None

    def marker(self, customer: int, name: str, event_id: str | None = None) -> str:
        m = f"mk{next(_serial)}x"
        self.markers[m] = (customer, name, event_id)
        return m

    def allowed(self, m: str) -> bool:
        index, name, event_id = self.markers[m]
        c = self.customers[index]
        if not c.active or name not in c.fields:
            return False
        return event_id is None or event_id not in self.private


def _granted(scopes: list[str]) -> set[str]:
    return field_names([parse_scope(s) for s in scopes])


def _grant(world: World, index: int, scopes: list[str]) -> None:
    c = world.customers[index]
    t = tokens_for(c.person, world.vendor, " ".join(scopes), prompt="consent")
    c.token, c.grant_id, c.active = t["access_token"], t["grant_id"], True
    c.fields = _granted(t["scope"].split())


def _write(world: World, index: int, name: str) -> None:
    category, key, value = WRITABLE[name]
    m = world.marker(index, name)
    r = world.customers[index].person.client.patch(f"{ME}/{category}", json={key: value(m)})
    assert r.status_code == 200, r.text


def _add_event(world: World, index: int, labels: list[str]) -> None:
    c = world.customers[index]
    m = world.marker(index, "history")
    body = {"vendor": "V", "type": "purchase", "occurred_at": "2026-11-01T10:00:00Z", "notes": m}
    r = c.person.client.post(f"{ME}/history", json={**body, "labels": labels})
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    world.markers[m] = (index, "history", event_id)
    c.events[event_id] = m
    if "private" in labels:
        world.private.add(event_id)


def _relabel(world: World, index: int, pick: int, labels: list[str]) -> None:
    c = world.customers[index]
    if not c.events:
        return
    event_id = sorted(c.events)[pick % len(c.events)]
    r = c.person.client.patch(f"{ME}/history/{event_id}", json={"labels": labels})
    assert r.status_code == 200, r.text
    world.private.discard(event_id)
    if "private" in labels:
        world.private.add(event_id)


def _delete_event(world: World, index: int, pick: int) -> None:
    c = world.customers[index]
    if not c.events:
        return
    event_id = sorted(c.events)[pick % len(c.events)]
    assert c.person.client.delete(f"{ME}/history/{event_id}").status_code == 204
    del c.events[event_id]


def _narrow(world: World, index: int, keep: list[bool]) -> None:
    c = world.customers[index]
    if not c.active:
        return
    current = sorted(f"{n}:read" for n in c.fields)
    wanted = [s for s, k in zip(current, keep, strict=False) if k] or current[:1]
    r = c.person.client.patch(f"{ME}/grants/{c.grant_id}", json={"scopes": wanted})
    assert r.status_code == 200, r.text
    c.fields = _granted(r.json()["scopes"])


def _revoke(world: World, index: int) -> None:
    c = world.customers[index]
    if c.grant_id is None:
        return
    assert c.person.client.delete(f"{ME}/grants/{c.grant_id}").status_code == 204
    c.active = False


def _expire(world: World, index: int) -> None:
    c = world.customers[index]
    if c.grant_id is None:
        return
    with Session(world.app.state.engine) as session:
        session.exec(
            update(Grant)
            .where(col(Grant.id) == c.grant_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    c.active = False


def _check(world: World, before: set[str], text: str) -> None:
    """Nothing outside the grants in ``text``, and every value in it
    covered by an access event recorded since ``before`` was taken."""
    received = [m for m in world.markers if m in text]
    leaked = [(m, world.markers[m]) for m in received if not world.allowed(m)]
    assert leaked == [], leaked
    with Session(world.app.state.engine) as session:
        events = session.exec(
            select(AccessEvent).where(AccessEvent.vendor_id == world.vendor.client_id)
        ).all()
    recorded = {(e.customer_id, f) for e in events if e.id not in before for f in e.fields}
    for m in received:
        index, name, _ = world.markers[m]
        assert (world.customers[index].person.id, name) in recorded, (m, name)


def _event_ids(world: World) -> set[str]:
    with Session(world.app.state.engine) as session:
        return set(session.exec(select(AccessEvent.id)).all())


def _read_one(world: World, index: int, how: int) -> None:
    c = world.customers[index]
    if c.token is None:
        return
    path, params = [
        ("/v1/data", {}),
        ("/v1/data/profile", {}),
        ("/v1/data/preferences", {}),
        ("/v1/data/history", {}),
        ("/v1/data/history", {"limit": 3}),
    ][how % 5]
    before = _event_ids(world)
    r = world.vendor.client.get(path, params=params, headers=bearer(c.token))
    if not c.active:
        assert r.status_code == 401, r.text
        return
    category = path.rsplit("/", 1)[-1]
    if category in ("profile", "preferences", "history") and not any(
        n == category or n.startswith(f"{category}.") for n in c.fields
    ):
        assert r.status_code == 403, r.text
        return
    assert r.status_code == 200, r.text
    _check(world, before, r.text)


def _read_feed(world: World, from_start: bool) -> None:
    cursor = None if from_start else world.feed_cursor
    while True:
        before = _event_ids(world)
        params: dict[str, Any] = {"limit": 4}
        if cursor is not None:
            params["cursor"] = cursor
        r = world.vendor.client.get("/v1/feed", params=params, headers=bearer(world.feed_token))
        assert r.status_code == 200, r.text
        _check(world, before, r.text)
        page = r.json()
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    world.feed_cursor = cursor


OPS = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), st.sampled_from(sorted(WRITABLE))),
    st.tuples(st.just("event"), st.integers(0, 2), st.lists(st.sampled_from(LABELS), unique=True)),
    st.tuples(
        st.just("relabel"),
        st.integers(0, 2),
        st.integers(0, 9),
        st.lists(st.sampled_from(LABELS), unique=True),
    ),
    st.tuples(st.just("delete"), st.integers(0, 2), st.integers(0, 9)),
    st.tuples(st.just("narrow"), st.integers(0, 2), st.lists(st.booleans(), max_size=20)),
    st.tuples(st.just("revoke"), st.integers(0, 2)),
    st.tuples(st.just("expire"), st.integers(0, 2)),
    st.tuples(st.just("read"), st.integers(0, 2), st.integers(0, 4)),
    st.tuples(st.just("feed"), st.booleans()),
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    grants=st.lists(
        st.lists(st.sampled_from(SCOPES), unique=True, max_size=3), min_size=3, max_size=3
    ),
    ops=st.lists(OPS, min_size=1, max_size=14),
)
def test_a_vendor_never_receives_more_than_its_grants_allow(
    app: FastAPI, grants: list[list[str]], ops: list[tuple[Any, ...]]
) -> None:
    run = next(_serial)
    vendor = register_vendor(app, f"Vendor {run}")
    people = [sign_up_and_log_in(app, f"c{run}-{n}@example.org") for n in range(3)]
    world = World(app=app, vendor=vendor, customers=[Customer(p) for p in people])
    world.feed_token = feed_token(vendor)
    for index in range(3):
        for name in WRITABLE:
            _write(world, index, name)
        _add_event(world, index, [])
        _add_event(world, index, ["private"])
        if grants[index]:
            _grant(world, index, grants[index])
    _read_feed(world, from_start=True)
    for op in ops:
        kind, *args = op
        if kind == "write":
            _write(world, *args)
        elif kind == "event":
            _add_event(world, *args)
        elif kind == "relabel":
            _relabel(world, *args)
        elif kind == "delete":
            _delete_event(world, *args)
        elif kind == "narrow":
            _narrow(world, *args)
        elif kind == "revoke":
            _revoke(world, *args)
        elif kind == "expire":
            _expire(world, *args)
        elif kind == "read":
            _read_one(world, *args)
        else:
            _read_feed(world, *args)
    # Whatever happened, a final full read of everything still holds.
    _read_feed(world, from_start=True)
    for index in range(3):
        _read_one(world, index, 0)
    for p in people:
        p.client.close()
