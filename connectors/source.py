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

from collections.abc import Callable, Iterator
from typing import Any

import dlt

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
        body = response.json()
        cursor = str(body["next_cursor"])
        yield body["items"], cursor, bool(body["has_more"])
        if not body["has_more"]:
            return


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
