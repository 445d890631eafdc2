"""The lean endpoints (vrm/lean.py): one table feeds both the dispatch
ahead of FastAPI and the routes behind it, which give the same answers;
and a read that decrypts a history does so off the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI
from starlette.routing import Match
from starlette.types import Scope

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import access_events, add_event
from vrm import lean
from vrm.history import service as history
from vrm.vendor_api import reads

# What an answer is, for comparing two: all but the headers that differ by
# the moment (date) or the connection.
COMPARED = ("content-type", "www-authenticate", "cache-control", "allow", "pragma")


def _concrete(path: str) -> str:
    return path.replace("{category}", "profile")


def _scope(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path}


def test_the_dispatch_takes_exactly_what_the_routes_match(app: FastAPI) -> None:
    for entry in lean.TABLE:
        path = _concrete(entry.path)
        (route,) = [r for r in app.router.routes if getattr(r, "path", None) == entry.path]
        match, child = route.matches(_scope(entry.method, path))
        assert match is Match.FULL, entry
        assert lean.lean_app(_scope(entry.method, path)) == (entry.app, child["path_params"])
        # Every other method goes to the route, which refuses it (405).
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE"):
            if method != entry.method:
                assert lean.lean_app(_scope(method, path)) is None, (method, entry)
    for path in ("/v1/data/", "/v1/data/profile/email", "/v1/datas", "/oauth/token/"):
        assert lean.lean_app(_scope("GET", path)) is None, path
        assert lean.lean_app(_scope("POST", path)) is None, path


def test_every_lean_endpoint_answers_as_its_route(
    app: FastAPI, vendor: Vendor, monkeypatch: Any
) -> None:
    """The same request without credentials, once ahead of FastAPI and once
    with the lean dispatch turned off (so through FastAPI's middleware and
    routing), gets the same answer."""

    def ask() -> list[Any]:
        return [vendor.client.request(e.method, _concrete(e.path)) for e in lean.TABLE]

    lean_answers = ask()
    monkeypatch.setattr(lean, "lean_app", lambda scope: None)
    for entry, ahead, routed in zip(lean.TABLE, lean_answers, ask(), strict=True):
        # No form: invalid_request (RFC 6749 5.2); no token: RFC 6750 3.1.
        assert ahead.status_code == {"POST": 400, "GET": 401}[entry.method], entry
        assert routed.status_code == ahead.status_code, (entry, routed.text)
        assert routed.content == ahead.content, entry
        assert {h: routed.headers.get(h) for h in COMPARED} == {
            h: ahead.headers.get(h) for h in COMPARED
        }, entry


def test_a_history_is_decrypted_off_the_event_loop(
    app: FastAPI, ana: Person, vendor: Vendor, monkeypatch: Any
) -> None:
    """One large history must not hold every other connection: each event
    is opened in a thread that runs no event loop, and the read's access
    event is still recorded (vrm/storage/groupcommit.py)."""
    add_event(ana, occurred_at="2026-11-01T10:00:00Z", notes="two books")
    token = tokens_for(ana, vendor, "history:read profile:read")["access_token"]
    opened_in_loop: list[bool] = []
    real_open = history.open_stored

    def spy(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            opened_in_loop.append(True)
        except RuntimeError:
            opened_in_loop.append(False)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(history, "open_stored", spy)
    reads = [("/v1/data", {}), ("/v1/data/history", {}), ("/v1/data/history", {"limit": "5"})]
    for path, params in reads:
        # Each read opens the event: none finds it in the vault's memory.
        app.state.vault.derived.clear()
        r = vendor.client.get(path, params=params, headers=bearer(token))
        assert r.status_code == 200, r.text
    assert opened_in_loop == [False, False, False]
    assert len(access_events(app, ana.id)) == 3


def test_a_history_already_in_the_vaults_memory_is_read_in_the_event_loop(
    app: FastAPI, ana: Person, vendor: Vendor, monkeypatch: Any
) -> None:
    """Only a read that opens events leaves the loop: one whose every event
    the vault remembers costs about what a profile does (vrm/vendor_api/reads.py)."""
    for n in (1, 2):
        add_event(ana, occurred_at=f"2026-11-0{n}T10:00:00Z", notes="two books")
    token = tokens_for(ana, vendor, "history:read profile:read")["access_token"]
    hops: list[str] = []
    real = reads.run_in_threadpool

    async def spy(func: Any, *args: Any) -> Any:
        hops.append(func.__name__)
        return await real(func, *args)

    monkeypatch.setattr(reads, "run_in_threadpool", spy)
    first = vendor.client.get("/v1/data", headers=bearer(token))
    again = vendor.client.get("/v1/data", headers=bearer(token))
    assert first.status_code == again.status_code == 200, again.text
    assert again.content == first.content
    expected = (
        ["_finish"] if app.state.engine.dialect.name == "sqlite" else ["_read_only", "_read_only"]
    )
    assert hops == expected
    add_event(ana, occurred_at="2026-11-03T10:00:00Z", notes="a new one")
    hops.clear()
    r = vendor.client.get("/v1/data", headers=bearer(token))
    assert len(r.json()["history"]) == 3
    assert hops == expected[:1]
