"""The store's vendor-wide feed as a dlt source (``vrm_feed``).

A public dlt source: a vendor loads it into any destination dlt supports
(``dlt.pipeline(destination="duckdb").run(vrm_feed(store))``), one row
per feed item as the store sent it (docs/vendors.md, "The feed"). The
resource keeps the feed's cursor in its dlt state: dlt stores it with the
load package and commits it only once that package has loaded, so a run
killed before then starts again from the last cursor loaded, and sees some
items again (with the same ids, so applying them twice is harmless).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import dlt
import orjson

from connectors.store import Store, StoreError

PAGE = 1000
CURSOR = "cursor"


class CursorExpired(StoreError):
    """The store no longer has what lies after the cursor (410): resync."""


def pages(
    store: Store, cursor: str | None, limit: int = PAGE
) -> Iterator[tuple[list[dict[str, Any]], str, bool]]:
    """The feed's pages from ``cursor`` (None: the start), each with the
    cursor after it and whether more wait."""
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = store.get("/v1/feed", params)
        if response.status_code == 410:
            raise CursorExpired("the store purged what followed the saved cursor: resync")
        if response.status_code != 200:
            raise StoreError(f"the feed answered {response.status_code}")
        body = orjson.loads(response.content)
        cursor = str(body["next_cursor"])
        yield body["items"], cursor, bool(body["has_more"])
        if not body["has_more"]:
            return


Page = tuple[list[dict[str, Any]], str, bool]
# Pages read ahead: enough to keep the store busy while dlt loads a few
# (a page of 1,000 items holds about 6 MB once parsed).
AHEAD = 4


class ReadAhead:
    """:func:`pages`, read up to ``depth`` pages ahead in a thread of its
    own, so the store prepares the next page while the connector applies
    this one (the two share no work, and the store is another process).

    What is read ahead is only held in memory: ``pages(cursor)`` continues
    where the previous call stopped if ``cursor`` is where it stopped (the
    cursor dlt committed with the last load), and otherwise starts again
    from ``cursor``. A connector killed with pages read ahead reads them
    again. While it reads ahead, nothing else may use ``store``."""

    def __init__(self, store: Store, limit: int = PAGE, depth: int = AHEAD) -> None:
        self.store, self.limit, self.depth = store, limit, depth
        self._next: str | None = None  # where the pages read ahead begin
        self._queue: queue.Queue[Page | BaseException] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def pages(self, cursor: str | None) -> Iterator[Page]:
        if self._thread is None or cursor != self._next:
            self.close()
            self._start(cursor)
        while True:
            page = self._queue.get()
            if isinstance(page, BaseException):
                self._thread = None
                raise page
            self._next = page[1]
            yield page
            if not page[2]:
                self._thread = None  # it read the last page and stopped
                return

    def _start(self, cursor: str | None) -> None:
        self._stop = stop = threading.Event()
        found: queue.Queue[Page | BaseException] = queue.Queue(self.depth)
        self._queue = found
        self._next = cursor

        def read() -> None:
            try:
                for page in pages(self.store, cursor, self.limit):
                    while not stop.is_set():
                        try:
                            found.put(page, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            except BaseException as exc:  # handed to the reader, raised there
                found.put(exc)

        self._thread = threading.Thread(target=read, name="vrm-feed-read-ahead", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop reading ahead (waiting for a request under way) and drop
        what was read."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        while thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        thread.join()


@dlt.source(name="vrm", max_table_nesting=0)
def vrm_feed(
    store: Store,
    limit: int = PAGE,
    on_page: Callable[[int, bool], None] | None = None,
) -> Any:
    """The vendor's feed from where the last load left it: one resource,
    ``feed_items``, keyed by the item's ``id``."""

    @dlt.resource(name="feed_items", primary_key="id", write_disposition="merge")
    def feed_items() -> Iterator[dict[str, Any]]:
        state = dlt.current.resource_state()
        for items, cursor, more in pages(store, state.get(CURSOR), limit):
            yield from items
            state[CURSOR] = cursor
            if on_page is not None:
                on_page(len(items), more)

    return feed_items
