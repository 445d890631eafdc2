"""Cursors of the feed (GET /v1/feed) and of incremental history reads
(GET /v1/data/history?since=) are the server's own: MACed, and bound to who
they were given to. docs/vendors.md: a cursor we did not give out is 400.

Before, a cursor was base64 of ``v1.<position>``: anyone could make one (the
docs' own example was accepted), and one vendor's worked for another.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from httpx import Response

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import add_event, feed_page, feed_token, read_feed
from vrm.feed.cursor import START, Cursors, Position

VENDORS_MD = Path(__file__).resolve().parents[2] / "docs" / "vendors.md"
HISTORY = "/v1/data/history"
WHEN = "2026-11-0{}T10:00:00Z"


FORGED = "The cursor is not one this server gave out to you; start again without one."


def _assert_refused(r: Response, path: str) -> None:
    assert_problem(r, 400, "bad-request", detail=FORGED, instance=path)


def _forgeries(real: str) -> list[str]:
    """What a vendor could make without the server's key: positions of its
    choosing in the old format, and the real cursor cut short or altered."""
    made_up = [
        base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
        for text in ("v1.0", "v1.1", "v2.0", "v1.9223372036854775807")
    ]
    flipped = real[:10] + ("A" if real[10] != "A" else "B") + real[11:]
    return [*made_up, real[:-1], real[:-4], real[:20], flipped, real + "A", real + "AAAA"]


def _docs_examples() -> list[str]:
    found = re.findall(r'"next_cursor": "([^"]+)"', VENDORS_MD.read_text())
    assert found  # the examples the docs show are what a vendor would try
    return found


def _feed(vendor: Vendor, token: str, cursor: str) -> Response:
    return vendor.client.get("/v1/feed", params={"cursor": cursor}, headers=bearer(token))


def test_a_feed_cursor_is_refused_unless_the_server_gave_it_out(
    ana_profile: Person, vendor: Vendor
) -> None:
    tokens_for(ana_profile, vendor, "profile.email:read")
    token = feed_token(vendor)
    _, cursors = read_feed(vendor, token, limit=1)
    real = cursors[0]
    assert feed_page(vendor, token, real)["has_more"] is False  # the real one works
    for forged in [*_forgeries(real), *_docs_examples()]:
        _assert_refused(_feed(vendor, token, forged), "/v1/feed")


def test_one_vendors_feed_cursor_does_not_work_for_another(
    ana_profile: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    tokens_for(ana_profile, vendor, "profile.email:read")
    tokens_for(ana_profile, other_vendor, "profile.email:read")
    _, cursors = read_feed(vendor, feed_token(vendor))
    # The other vendor's reader is at the same position, yet mine is not its.
    assert read_feed(other_vendor, feed_token(other_vendor))[1] != cursors
    _assert_refused(_feed(other_vendor, feed_token(other_vendor), cursors[-1]), "/v1/feed")


def test_a_history_cursor_is_bound_to_its_grant(
    ana: Person, bob: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    add_event(ana, occurred_at=WHEN.format(1))
    add_event(bob, occurred_at=WHEN.format(2))
    ana_token = tokens_for(ana, vendor, "history:read")["access_token"]
    bob_token = tokens_for(bob, vendor, "history:read")["access_token"]
    elsewhere = tokens_for(ana, other_vendor, "history:read")["access_token"]

    def since(token: str, cursor: str) -> Response:
        return vendor.client.get(
            HISTORY, params={"since": cursor, "limit": 5}, headers=bearer(token)
        )

    r = vendor.client.get(HISTORY, params={"limit": 5}, headers=bearer(ana_token))
    assert r.status_code == 200, r.text
    cursor = r.json()["next_cursor"]
    r = since(ana_token, cursor)
    assert r.status_code == 200, r.text
    assert r.json()["history"] == []
    # Another customer of the same vendor, the same customer at another
    # vendor, and a feed cursor: none is this grant's.
    for token in (bob_token, elsewhere):
        _assert_refused(since(token, cursor), HISTORY)
    _, feed_cursors = read_feed(vendor, feed_token(vendor))
    _assert_refused(since(ana_token, feed_cursors[-1]), HISTORY)
    for forged in [*_forgeries(cursor), *_docs_examples()]:
        _assert_refused(since(ana_token, forged), HISTORY)


@pytest.mark.parametrize("cursor", ["=", "!!!!", "é", "AAAA" * 49])
def test_a_cursor_that_is_not_base64url_is_refused(vendor: Vendor, cursor: str) -> None:
    _assert_refused(_feed(vendor, feed_token(vendor), cursor), "/v1/feed")


def test_the_shortest_and_longest_positions_round_trip() -> None:
    given = Cursors(bytes(32), b"feed\0vendor")
    for position in (START, Position(10**19 - 1, "f" * 64), Position(7, "0")):
        assert given.decode(given.encode(position)) == position
