"""A cursor older than the deletions the store still keeps (vrm/feed/retention.py)
is refused with 410, so that a vendor resyncs instead of silently keeping a
copy of something it was to delete."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import Response
from sqlmodel import Session

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import ME, add_event, feed_page, feed_token, read_feed
from tests.vrm.test_openapi_problems import assert_documented
from vrm import purge
from vrm.dbtypes import utcnow
from vrm.feed import retention
from vrm.feed.cursor import Position
from vrm.feed.retention import EXPIRED, CursorExpired
from vrm.settings import Settings

HISTORY = "/v1/data/history"


def _assert_expired(r: Response, path: str) -> None:
    assert_problem(r, 410, "cursor-expired", detail=EXPIRED, instance=path)


def _purge_deletions(app: FastAPI, settings: Settings) -> None:
    """Purge as if every deletion were past its retention (and nothing else)."""
    now_old = settings.model_copy(update={"retain_feed_deletions_seconds": 0})
    removed = purge.purge(app.state.engine, now_old, utcnow(), pause=0)
    assert removed["feed_deletions"] == 1, removed


def test_a_feed_cursor_from_before_a_purged_deletion_is_told_to_resync(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor
) -> None:
    add_event(ana, occurred_at="2026-11-01T10:00:00Z", notes="kept")
    gone = add_event(ana, occurred_at="2026-11-02T10:00:00Z", notes="gone")
    tokens_for(ana, vendor, "history:read")
    token = feed_token(vendor)
    stale = read_feed(vendor, token)[1][-1]
    assert ana.client.delete(f"{ME}/history/{gone}").status_code == 204
    items, cursors = read_feed(vendor, token, stale)
    assert [i["type"] for i in items] == ["delete"]
    fresh = cursors[-1]

    _purge_deletions(app, settings)

    r = vendor.client.get("/v1/feed", params={"cursor": stale}, headers=bearer(token))
    _assert_expired(r, "/v1/feed")
    assert_documented(app, "GET", "/v1/feed", r)
    # A cursor from after the deletion loses nothing, and so goes on.
    assert feed_page(vendor, token, fresh)["items"] == []
    # The resync: a snapshot of what there is now, the deleted event not in it.
    items, _ = read_feed(vendor, token)
    assert [i["type"] for i in items] == ["snapshot"]
    events = items[0]["data"]["history"]
    assert [e["notes"] for e in events] == ["kept"]


def test_a_history_cursor_from_before_a_purged_deletion_is_told_to_resync(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor, "history:read")["access_token"]
    add_event(ana, occurred_at="2026-11-01T10:00:00Z", notes="kept")
    gone = add_event(ana, occurred_at="2026-11-02T10:00:00Z", notes="gone")

    def since(cursor: str | None) -> Response:
        params = {"limit": "50", **({"since": cursor} if cursor else {})}
        return vendor.client.get(HISTORY, params=params, headers=bearer(token))

    r = since(None)
    assert r.status_code == 200, r.text
    stale = r.json()["next_cursor"]
    assert ana.client.delete(f"{ME}/history/{gone}").status_code == 204
    r = since(stale)
    assert r.status_code == 200, r.text
    assert len(r.json()["deleted"]) == 1
    fresh = r.json()["next_cursor"]

    _purge_deletions(app, settings)

    _assert_expired(since(stale), HISTORY)
    r = since(fresh)
    assert r.status_code == 200, r.text
    assert (r.json()["history"], r.json()["deleted"]) == ([], [])
    r = since(None)
    assert r.status_code == 200, r.text
    assert [e["notes"] for e in r.json()["history"]] == ["kept"]


def test_only_a_position_wholly_past_the_horizon_is_fresh(app: FastAPI) -> None:
    with Session(app.state.engine) as session:
        retention.check(session, Position(0, "g"))  # nothing purged yet
        retention.raise_horizon(session, 7)
        session.commit()
        for fresh in (Position(7), Position(8), Position(8, "g")):
            retention.check(session, fresh)
        for stale in (Position(0), Position(6), Position(6, "g"), Position(7, "g")):
            with pytest.raises(CursorExpired):
                retention.check(session, stale)
