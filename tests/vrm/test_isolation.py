"""One customer can neither read nor change another's data, on any route.

The walker calls every route of the app, every method, as bob, with ana's
history event id in the path and plausible bodies. A route under /api/v1/me
that the walker has no step for fails the walk, so a new route cannot slip by
without being probed here.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlmodel import Session, SQLModel

from tests.conftest import Person
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import assert_problem, exported
from tests.vrm.test_export import comparable
from vrm.accounts.models import LoginSession

ME = "/api/v1/me"
NOT_LOGGED_IN = "Log in first (POST /api/v1/session)."
EVENT = f"{ME}/history/{{event_id}}"
GRANT = f"{ME}/grants/{{grant_id}}"
LOGIN_SESSION = f"{ME}/sessions/{{session_id}}"
BOB_NEW_PASSWORD = "bob's brand new passphrase"


def _under_me(path: str) -> bool:
    return path == ME or path.startswith(ME + "/")


@dataclass
class AnaData:
    markers: list[str]
    event_ids: list[str]
    vendor: str
    grant_id: str
    client_id: str
    session_id: str
    entry_index: int


@pytest.fixture
def ana_data(app: FastAPI, ana: Person) -> AnaData:
    """Ana's profile, preferences and two history events, every value
    carrying a marker nobody else could produce."""

    def m(prefix: str) -> str:
        return f"{prefix}{uuid.uuid4().hex}"

    given, family, street, brand = m("given"), m("family"), m("street"), m("brand")
    diet, free_key, free_value = m("diet"), m("k"), m("free")
    vendor, notes, item = m("vendor"), m("notes"), m("item")
    contact = f"{m('contact')}@example.net"
    r = ana.client.put(
        f"{ME}/profile",
        json={
            "given_name": given,
            "family_name": family,
            "email": contact,
            "postal_address": {"street_address": street, "country": "PT"},
        },
    )
    assert r.status_code == 200, r.text
    r = ana.client.put(
        f"{ME}/preferences",
        json={
            "shopping": {"brands": [brand]},
            "dietary": [diet],
            "free": {free_key: free_value},
        },
    )
    assert r.status_code == 200, r.text
    event_ids = []
    for when in ("2024-05-01T10:00:00Z", "2024-06-01T10:00:00Z"):
        r = ana.client.post(
            f"{ME}/history",
            json={
                "vendor": vendor,
                "type": "purchase",
                "occurred_at": when,
                "items": [{"name": item, "amount": "12.50", "labels": ["gift"]}],
                "currency": "EUR",
                "notes": notes,
                "labels": ["private"],
            },
        )
        assert r.status_code == 201, r.text
        event_ids.append(r.json()["id"])
    markers = [given, family, contact, street, brand, diet, free_key, free_value, vendor]
    # A grant to a vendor, with live tokens.
    shop = register_vendor(app)
    grant_id = tokens_for(ana, shop, "profile.email:read history:read")["grant_id"]
    with Session(app.state.engine) as db:
        login = db.get(LoginSession, app.state.vault.token_hash(ana.client.cookies["vrm_session"]))
        assert login is not None
    granted = ana.client.get(f"{ME}/access-log", params={"type": "consent.granted"})
    return AnaData(
        markers=[*markers, notes, item, ana.email],
        event_ids=event_ids,
        vendor=vendor,
        grant_id=grant_id,
        client_id=shop.client_id,
        session_id=login.id,
        entry_index=granted.json()["items"][0]["index"],
    )


# -- the walker ------------------------------------------------------------


@dataclass
class Probe:
    """What bob knows while walking: ana's event id, her email, her vendor."""

    event_id: str
    victim_email: str
    vendor: str
    bob: Person
    grant_id: str = ""
    # The vendor ana granted: bob pokes at its registration too.
    client_id: str = ""
    session_id: str = ""
    # An audit log entry about ana (her grant's).
    entry_index: int = 0


@dataclass(frozen=True)
class Step:
    method: str
    path: str
    expect: int
    request: Callable[[Probe], dict[str, Any]] = field(default=lambda p: {})
    # Steps that log bob out or erase him run after everything else.
    finale: bool = False


BOB_EVENT = {"vendor": "Bob's Bikes", "type": "purchase", "occurred_at": "2024-07-01T09:00:00Z"}

STEPS = [
    Step("GET", ME, 200),
    Step("GET", f"{ME}/profile", 200),
    Step("PUT", f"{ME}/profile", 200, lambda p: {"json": {"given_name": "Bob"}}),
    Step("PATCH", f"{ME}/profile", 200, lambda p: {"json": {"family_name": "Builder"}}),
    Step("GET", f"{ME}/preferences", 200),
    Step("PUT", f"{ME}/preferences", 200, lambda p: {"json": {"dietary": ["vegan"]}}),
    Step("PATCH", f"{ME}/preferences", 200, lambda p: {"json": {"free": {"team": "blue"}}}),
    # Filtering by ana's vendor must find nothing in bob's history.
    Step("GET", f"{ME}/history", 200, lambda p: {"params": {"vendor": p.vendor}}),
    Step("POST", f"{ME}/history", 201, lambda p: {"json": BOB_EVENT}),
    Step("GET", EVENT, 404),
    Step("PATCH", EVENT, 404, lambda p: {"json": {"notes": "bob was here", "labels": []}}),
    Step("DELETE", EVENT, 404),
    Step("GET", f"{ME}/export", 200),
    Step("GET", f"{ME}/grants", 200),
    Step("GET", GRANT, 404),
    Step("GET", f"{GRANT}/receipt", 404),
    Step("PATCH", GRANT, 404, lambda p: {"json": {"scopes": ["profile.email:read"]}}),
    Step("DELETE", GRANT, 404),
    Step("GET", f"{ME}/sessions", 200),
    # Bob's audit log, filtered by ana's vendor, holds nothing of hers; her
    # entry's receipt is no more found for him than a missing one.
    Step("GET", f"{ME}/access-log", 200, lambda p: {"params": {"vendor": p.client_id}}),
    Step("GET", f"{ME}/access-log/{{index}}/receipt", 404),
    Step("DELETE", LOGIN_SESSION, 404),
    Step("GET", "/healthz", 200),
    # Bob tries to register ana's email; he is told it is taken, nothing more.
    Step(
        "POST",
        "/api/v1/accounts",
        409,
        lambda p: {"json": {"email": p.victim_email, "password": "a guess at a password"}},
    ),
    Step(
        "POST",
        "/api/v1/session",
        200,
        lambda p: {"json": {"email": p.bob.email, "password": p.bob.password}},
    ),
    Step(
        "PUT",
        f"{ME}/password",
        204,
        lambda p: {"json": {"current_password": p.bob.password, "new_password": BOB_NEW_PASSWORD}},
        finale=True,
    ),
    Step("DELETE", ME, 204, lambda p: {"json": {"password": BOB_NEW_PASSWORD}}, finale=True),
    Step("DELETE", "/api/v1/session", 204, finale=True),
]


def _api_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set()
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            assert context.path_format is not None
            found |= {(method, context.path_format) for method in context.methods or ()}
    return found


def _plan(app: FastAPI) -> list[Step]:
    """Every API route of the app as a step, in an order that leaves bob's
    log-out and erasure for the end. Fails on a /api/v1/me route without a
    step, and on a step whose route no longer exists."""
    routes = _api_routes(app)
    known = {(s.method, s.path) for s in STEPS}
    unprobed = sorted(r for r in routes - known if _under_me(r[1]))
    assert not unprobed, f"routes under {ME} with no isolation step: {unprobed}"
    stale = sorted(known - routes)
    assert not stale, f"isolation steps for routes that no longer exist: {stale}"
    # Routes elsewhere get a generic call: nothing from ana may come back.
    others = [Step(m, p, 0) for m, p in sorted(routes - known)]
    return [s for s in STEPS if not s.finale] + others + [s for s in STEPS if s.finale]


def _url(path: str, probe: Probe) -> str:
    url = (
        path.replace("{event_id}", probe.event_id)
        .replace("{grant_id}", probe.grant_id)
        .replace("{client_id}", probe.client_id)
        .replace("{session_id}", probe.session_id)
        .replace("{index}", str(probe.entry_index))
        .replace("{category}", "profile")
        .replace("{name}", "swagger-ui.css")  # the API docs' assets
        .replace("{path}", "0/000")  # the audit log's first tile
    )
    assert "{" not in url, f"the walker does not know the path parameters of {path}"
    return url


@dataclass
class Seen:
    step: Step
    status: int
    text: str


def _walk(app: FastAPI, client: TestClient, probe: Probe) -> list[Seen]:
    seen = []
    for step in _plan(app):
        r = client.request(step.method, _url(step.path, probe), **step.request(probe))
        headers = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        seen.append(Seen(step, r.status_code, f"{headers}\n\n{r.text}"))
    return seen


def _stored_rows(app: FastAPI, customer_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored byte of the customer: each table that has a customer_id
    column, and the customer row itself."""
    rows = {}
    with app.state.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            column = table.c.get("customer_id")
            if column is None and table.name == "customer":
                column = table.c.id
            if column is None:
                continue
            query = select(table).where(column == customer_id).order_by(*table.primary_key)
            rows[table.name] = [tuple(row) for row in conn.execute(query)]
    return rows


# -- tests -----------------------------------------------------------------


def test_bob_walking_every_route_gets_the_expected_answers(
    app: FastAPI, ana_data: AnaData, ana: Person, bob: Person
) -> None:
    # Guards the two tests below: a walk where every call failed early (say,
    # 401 for a lost cookie) would leak nothing and prove nothing.
    probe = Probe(
        ana_data.event_ids[0],
        ana.email,
        ana_data.vendor,
        bob,
        ana_data.grant_id,
        ana_data.client_id,
        ana_data.session_id,
        ana_data.entry_index,
    )
    seen = _walk(app, bob.client, probe)
    unexpected = [
        (s.step.method, s.step.path, s.status)
        for s in seen
        if s.status != s.step.expect and not (s.step.expect == 0 and s.status < 500)
    ]
    assert unexpected == []


def test_bob_walking_every_route_never_sees_anas_values(
    app: FastAPI, ana_data: AnaData, ana: Person, bob: Person
) -> None:
    probe = Probe(
        ana_data.event_ids[0],
        ana.email,
        ana_data.vendor,
        bob,
        ana_data.grant_id,
        ana_data.client_id,
        ana_data.session_id,
        ana_data.entry_index,
    )
    seen = _walk(app, bob.client, probe)
    leaks = [
        (s.step.method, s.step.path, marker)
        for s in seen
        for marker in ana_data.markers
        if marker.casefold() in s.text.casefold()
    ]
    assert leaks == []
    # The markers are findable where they belong.
    assert all(marker in ana.client.get(f"{ME}/export").text for marker in ana_data.markers)


def test_bob_walking_every_route_leaves_anas_data_byte_for_byte_unchanged(
    app: FastAPI, ana_data: AnaData, ana: Person, bob: Person
) -> None:
    export_before = comparable(exported(ana.client).json())
    stored_before = _stored_rows(app, ana.id)
    assert len(stored_before["history_record"]) == 2

    _walk(
        app,
        bob.client,
        Probe(
            ana_data.event_ids[1],
            ana.email,
            ana_data.vendor,
            bob,
            ana_data.grant_id,
            ana_data.client_id,
            ana_data.session_id,
            ana_data.entry_index,
        ),
    )

    assert comparable(exported(ana.client).json()) == export_before
    # Not even rewritten with the same content: a rewrite would mean a fresh
    # nonce, so different ciphertext.
    assert _stored_rows(app, ana.id) == stored_before


def test_bob_reading_anas_event_by_id_gets_the_same_404_as_for_a_missing_id(
    ana_data: AnaData, bob: Person
) -> None:
    event_id = ana_data.event_ids[0]
    r = bob.client.get(f"{ME}/history/{event_id}")
    assert_problem(r, 404, "not-found", detail="No such history event.")
    missing = bob.client.get(f"{ME}/history/{uuid.uuid4().hex}")
    assert missing.status_code == 404, missing.text
    # Nothing tells bob that the id exists for someone else.
    assert {k: v for k, v in r.json().items() if k != "instance"} == {
        k: v for k, v in missing.json().items() if k != "instance"
    }


def test_bob_cannot_delete_anas_event_by_id(ana_data: AnaData, ana: Person, bob: Person) -> None:
    event_id = ana_data.event_ids[0]
    r = bob.client.delete(f"{ME}/history/{event_id}")
    assert r.status_code == 404, r.text
    r = ana.client.get(f"{ME}/history/{event_id}")
    assert r.status_code == 200, r.text


def test_bob_cannot_patch_anas_event_by_id(ana_data: AnaData, ana: Person, bob: Person) -> None:
    event_id = ana_data.event_ids[0]
    before = ana.client.get(f"{ME}/history/{event_id}")
    assert before.status_code == 200, before.text
    r = bob.client.patch(
        f"{ME}/history/{event_id}",
        json={"notes": "bob was here", "labels": []},
        headers={"If-Match": "*"},
    )
    assert r.status_code == 404, r.text
    after = ana.client.get(f"{ME}/history/{event_id}")
    assert after.status_code == 200, after.text
    assert after.json() == before.json()
    assert after.headers["etag"] == before.headers["etag"]


def _logged_out_cookie(app: FastAPI, person: Person) -> str:
    with TestClient(app) as c:
        r = c.post("/api/v1/session", json={"email": person.email, "password": person.password})
        assert r.status_code == 200, r.text
        token = r.cookies["vrm_session"]
        r = c.delete("/api/v1/session")
        assert r.status_code == 204, r.text
    return token


@pytest.mark.parametrize("cookie", ["absent", "forged", "logged_out"])
def test_every_me_route_refuses_a_request_without_a_valid_session_with_401(
    app: FastAPI, ana_data: AnaData, ana: Person, cookie: str
) -> None:
    cookies = {
        "absent": {},
        "forged": {"vrm_session": secrets.token_urlsafe(32)},
        "logged_out": {"vrm_session": _logged_out_cookie(app, ana)},
    }[cookie]
    # ana's own event id: a route that skipped authentication would find it.
    probe = Probe(
        ana_data.event_ids[0],
        ana.email,
        ana_data.vendor,
        ana,
        ana_data.grant_id,
        ana_data.client_id,
        ana_data.session_id,
        ana_data.entry_index,
    )
    refused = set()
    with TestClient(app, cookies=cookies) as stranger:
        for step in _plan(app):
            if _under_me(step.path):
                r = stranger.request(step.method, _url(step.path, probe), **step.request(probe))
                assert_problem(r, 401, "unauthenticated", detail=NOT_LOGGED_IN)
                refused.add((step.method, step.path))
    assert len(refused) == len([s for s in STEPS if _under_me(s.path)])
    # Ana's data is untouched by the attempts, her session still works.
    assert ana.client.get(f"{ME}/history/{probe.event_id}").status_code == 200
