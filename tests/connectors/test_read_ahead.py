"""The feed read ahead in a thread (connectors/source.py ``ReadAhead``):
the same pages in the same order as reading one by one, continued across
dlt runs from the cursor dlt saved, started again from any other cursor,
and the store's errors raised to the reader."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from connectors.source import ReadAhead, pages
from connectors.store import StoreError

PAGES = 5


class FakeStore:
    """A feed of PAGES pages of two items each; the cursor is the page
    number. Counts requests, and can fail one page."""

    def __init__(self, failing: int | None = None) -> None:
        self.requests: list[str | None] = []
        self.failing = failing
        self.threads: set[str] = set()

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        assert path == "/v1/feed"
        cursor = params.get("cursor")
        self.requests.append(cursor)
        self.threads.add(threading.current_thread().name)
        n = int(cursor or 0)
        if n == self.failing:
            return httpx.Response(503 if n else 500)
        body = {
            "items": [{"id": f"{n}:{i}", "type": "tombstone"} for i in range(2)],
            "next_cursor": str(n + 1),
            "has_more": n + 1 < PAGES,
        }
        return httpx.Response(200, json=body)


def _ids(found: list[Any]) -> list[str]:
    return [item["id"] for items, _, _ in found for item in items]


def test_read_ahead_gives_the_pages_one_by_one_reading_gives() -> None:
    plain = list(pages(FakeStore(), None))
    store = FakeStore()
    ahead = ReadAhead(store, depth=2)
    try:
        found = list(ahead.pages(None))
    finally:
        ahead.close()
    assert found == plain
    assert len(found) == PAGES
    assert found[-1][2] is False
    # Each page read once, by the thread, not by the caller.
    assert store.requests == [None, *map(str, range(1, PAGES))]
    assert store.threads == {"vrm-feed-read-ahead"}


def test_a_run_that_stops_early_is_continued_from_the_saved_cursor() -> None:
    store = FakeStore()
    ahead = ReadAhead(store, depth=2)
    try:
        first = ahead.pages(None)
        taken = [next(first), next(first)]  # a load of two pages
        first.close()
        rest = list(ahead.pages(taken[-1][1]))  # dlt saved the second's cursor
    finally:
        ahead.close()
    assert _ids(taken + rest) == _ids(list(pages(FakeStore(), None)))
    # Nothing read twice: the pages read ahead were the ones wanted.
    assert sorted(store.requests, key=str) == sorted([None, *map(str, range(1, PAGES))], key=str)


def test_another_cursor_starts_again_from_it() -> None:
    store = FakeStore()
    ahead = ReadAhead(store, depth=2)
    try:
        first = ahead.pages(None)
        next(first)
        next(first)
        first.close()
        # A load failed: dlt's cursor is still the first page's.
        again = list(ahead.pages("1"))
    finally:
        ahead.close()
    assert _ids(again) == _ids(list(pages(FakeStore(), "1")))
    assert again[0][0][0]["id"] == "1:0"


def test_the_stores_error_reaches_the_reader_and_a_new_read_starts_over() -> None:
    store = FakeStore(failing=2)
    ahead = ReadAhead(store, depth=2)
    try:
        reading = ahead.pages(None)
        got = [next(reading), next(reading)]
        with pytest.raises(StoreError, match="503"):
            next(reading)
        store.failing = None
        rest = list(ahead.pages(got[-1][1]))
    finally:
        ahead.close()
    assert _ids(got + rest) == _ids(list(pages(FakeStore(), None)))


def test_close_stops_the_thread_with_pages_unread() -> None:
    store = FakeStore()
    ahead = ReadAhead(store, depth=1)
    reading = ahead.pages(None)
    next(reading)
    reading.close()
    ahead.close()
    assert not [t for t in threading.enumerate() if t.name == "vrm-feed-read-ahead"]
    # At most the page taken, one waiting and one being put: never the rest.
    assert len(store.requests) <= 3
