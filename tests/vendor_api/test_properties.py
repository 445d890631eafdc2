"""Property: whatever customers write, grant, narrow, revoke or let expire,
and however the vendor reads (per customer, incrementally, or through the
feed), the vendor never receives a value outside an active grant, never a
private event, and every value it receives is covered by an access event.

And the rule of who may see a field, stated once here (:func:`_rule`, with
:func:`_visible_events`): every path (the data API, the feed's snapshots,
changes and tombstones, and OIDC userinfo) gives exactly the fields it
names, the same set on each path, and the access policy
(consent/policy.py) answers the same.

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

from consent import policy
from consent.grants.models import Grant
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import ME, feed_token
from vrm.catalogue import CATEGORIES
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
# The profile fields the test fills with a constant, so that every granted
# profile field holds a value and userinfo names each one (it leaves out a
# claim without a value, where the data API sends null).
PROFILE_REST = {
    "phone": "+441234567890",
    "postal_address": {"locality": "Leeds"},
    "birth_date": "1990-01-02",
    "language": "en",
}
SCOPES = [
    "profile.given_name:read",
    "profile.email:read",
    "email",  # OIDC Core 5.4: the profile's email
    "profile:read",
    "preferences.dietary:read",
    "preferences:read",
    "history:read",
]
LABELS = ["gift", "not_for_me", "private"]
# Each event holds an item labelled private, named by a marker of this
# name: no vendor may ever see it, whatever the event's labels.
PRIVATE_ITEM = "private item"
_serial = itertools.count()


@dataclass
class Customer:
    person: Person
    token: str | None = None
    grant_id: str | None = None
    fields: set[str] = field(default_factory=set)  # what the grant gives now
    active: bool = False
    events: dict[str, str] = field(default_factory=dict)  # event id -> marker
    token_scope: str = ""  # as the token response gave it
    grant_scopes: list[str] = field(default_factory=list)  # as the grant holds them now
    # The tombstones the feed must carry for this grant, in order.
    tombstones: list[tuple[str, list[str]]] = field(default_factory=list)
    revoked: bool = False
    expired: bool = False  # and not yet told on the feed


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
            return False  # and a private item's name is in no grant
        return event_id is None or event_id not in self.private


def _rule(scopes: list[str]) -> set[str]:
    """The rule, stated once, independently of the code under test: what
    a vendor holding these scopes may see. A field scope gives that field;
    a category scope every field of a document category, or the history
    whole (never its private events: :func:`_visible_events`)."""
    names: set[str] = set()
    for scope in scopes:
        if scope == "email":
            names.add("profile.email")
            continue
        name, _, action = scope.partition(":")
        if scope == "openid" or action != "read":
            continue
        category, _, one = name.partition(".")
        if one or CATEGORIES[category].kind == "events":
            names.add(name)
        else:
            names.update(f"{category}.{f}" for f in CATEGORIES[category].fields)
    return names


def _policy(c: Customer) -> set[str]:
    """What the access policy says the customer's token may see now."""
    accesses, _, _ = policy.effective(c.token_scope, tuple(c.grant_scopes), True)
    return policy.field_names(accesses)


def _visible_events(world: World, c: Customer) -> set[str]:
    """The markers of the customer's events a vendor granted history sees."""
    return {m for event_id, m in c.events.items() if event_id not in world.private}


def _grant(world: World, index: int, scopes: list[str]) -> None:
    c = world.customers[index]
    t = tokens_for(c.person, world.vendor, " ".join(["openid", *scopes]), prompt="consent")
    c.token, c.grant_id, c.active = t["access_token"], t["grant_id"], True
    c.fields = _rule(scopes)
    c.token_scope = t["scope"]
    c.grant_scopes = [s for s in t["scope"].split() if s != "openid"]
    assert _policy(c) == c.fields


def _write(world: World, index: int, name: str) -> None:
    category, key, value = WRITABLE[name]
    m = world.marker(index, name)
    r = world.customers[index].person.client.patch(f"{ME}/{category}", json={key: value(m)})
    assert r.status_code == 200, r.text


def _add_event(world: World, index: int, labels: list[str]) -> None:
    c = world.customers[index]
    m = world.marker(index, "history")
    items = [{"name": "shown"}, {"name": world.marker(index, PRIVATE_ITEM), "labels": ["private"]}]
    body = {
        "vendor": "V",
        "type": "purchase",
        "occurred_at": "2026-11-01T10:00:00Z",
        "notes": m,
        "items": items,
    }
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
    before, c.fields = c.fields, _rule(wanted)
    c.grant_scopes = r.json()["scopes"]
    if before - c.fields:
        c.tombstones.append(("narrowed", sorted(before - c.fields)))
    assert _policy(c) == c.fields
    _agree(world, c)


def _revoke(world: World, index: int) -> None:
    c = world.customers[index]
    if c.grant_id is None:
        return
    assert c.person.client.delete(f"{ME}/grants/{c.grant_id}").status_code == 204
    if not c.revoked:  # expired or not: a revoked grant's expiry is never told
        c.tombstones.append(("revoked", sorted(c.fields)))
    c.active, c.revoked, c.expired = False, True, False


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
    c.expired = c.expired or c.active  # told on the next feed read
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


def _shown(data: dict[str, Any]) -> set[str]:
    """The field names a data API body or a feed snapshot's data holds."""
    names: set[str] = set()
    for category, value in data.items():
        if category not in CATEGORIES:
            continue  # subject, grant_id, purpose
        if CATEGORIES[category].kind == "events":
            names.add(category)
        else:
            names.update(f"{category}.{f}" for f in value)
    return names


def _notes(data: dict[str, Any]) -> set[str]:
    """The markers of the events shown, each without its private item."""
    events = data.get("history", [])
    assert [[i["name"] for i in e["items"]] for e in events] == [["shown"]] * len(events)
    return {e["notes"] for e in events}


def _agree(world: World, c: Customer) -> None:
    """The data API and userinfo give exactly the fields of the rule (and
    of the policy), and exactly the events not labelled private."""
    r = world.vendor.client.get("/v1/data", headers=bearer(c.token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert _shown(body) == c.fields == _policy(c)
    assert _notes(body) == (_visible_events(world, c) if "history" in c.fields else set())
    r = world.vendor.client.get("/oauth/userinfo", headers=bearer(c.token))
    assert r.status_code == 200, r.text
    claims = set(r.json()) - {"sub"}
    reached = {f"profile.{f}" for f, claim in policy.CLAIMS.items() if claim in claims}
    assert len(reached) == len(claims), claims
    assert reached == {n for n in c.fields if n.startswith("profile.")}


def _feed_agrees(world: World, items: list[dict[str, Any]]) -> None:
    """A whole feed, read from the start: each active grant's snapshot and
    changes give exactly the fields of the rule, its snapshot exactly the
    events not labelled private, and each grant's tombstones name exactly
    what it stopped giving, in order."""
    by_grant = {c.grant_id: c for c in world.customers if c.grant_id is not None}
    snapshots: dict[str, set[str]] = {}
    tombstones: dict[str, list[tuple[str, list[str]]]] = {g: [] for g in by_grant}
    for item in items:
        c = by_grant[item["grant_id"]]
        if item["type"] == "tombstone":
            tombstones[item["grant_id"]].append((item["reason"], item["fields"]))
        elif item["type"] == "snapshot":
            assert c.active, item
            snapshots[item["grant_id"]] = _shown(item["data"])
            visible = _visible_events(world, c) if "history" in c.fields else set()
            assert _notes(item["data"]) == visible
        elif item["type"] == "upsert" and item["category"] != "history":
            category = item["category"]
            assert {f"{category}.{f}" for f in item["data"]} == {
                n for n in c.fields if n.startswith(f"{category}.")
            }
    for grant_id, c in by_grant.items():
        if c.active:
            assert snapshots[grant_id] == c.fields == _policy(c)
        else:
            assert grant_id not in snapshots
        assert tombstones[grant_id] == c.tombstones


def _read_feed(world: World, from_start: bool) -> list[dict[str, Any]]:
    cursor = None if from_start else world.feed_cursor
    items: list[dict[str, Any]] = []
    for c in world.customers:  # each read of the feed tells expiries first
        if c.expired:
            c.tombstones.append(("expired", sorted(c.fields)))
            c.expired = False
    while True:
        before = _event_ids(world)
        params: dict[str, Any] = {"limit": 4}
        if cursor is not None:
            params["cursor"] = cursor
        r = world.vendor.client.get("/v1/feed", params=params, headers=bearer(world.feed_token))
        assert r.status_code == 200, r.text
        _check(world, before, r.text)
        page = r.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    world.feed_cursor = cursor
    return items


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
        r = people[index].client.patch(f"{ME}/profile", json=PROFILE_REST)
        assert r.status_code == 200, r.text
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
    # Whatever happened, a final full read of everything still holds, and
    # every path gives the same fields.
    _feed_agrees(world, _read_feed(world, from_start=True))
    for index in range(3):
        _read_one(world, index, 0)
        c = world.customers[index]
        if c.active:
            _agree(world, c)
    for p in people:
        p.client.close()
