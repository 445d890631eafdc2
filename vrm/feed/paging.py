"""Pages of the change log that count what the reader is shown.

A log row may give its reader nothing: a change of a category its grant
does not cover, of a grant ended since, or of a history event the customer
keeps private, which only opening the event tells (see
:func:`vrm.feed.changes.touch_event`). If such a row took a place on a page,
a short page, or an empty one that says there is more, would tell the
reader that something it may not see changed. So a page is filled: rows
are read in order, in batches that grow while rows yield nothing, until
the page holds as many items as asked, or the rows run out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")
Key = TypeVar("Key")
Out = TypeVar("Out")

# Rows read at most in one batch while filling a page.
MAX_BATCH = 1000


def fill(
    *,
    fetch: Callable[[Key, int], Sequence[Row]],
    key: Callable[[Row], Key],
    produce: Callable[[Row], Out | None],
    after: Key,
    want: int,
) -> list[tuple[Row, Out]]:
    """The first ``want`` rows after ``after`` that produce something, with
    what they produced. ``fetch(after, n)`` returns up to ``n`` rows after
    a key, in order; fewer than ``n`` means there are no more."""
    found: list[tuple[Row, Out]] = []
    size = want
    while True:
        rows = fetch(after, size)
        for row in rows:
            out = produce(row)
            if out is not None:
                found.append((row, out))
                if len(found) == want:
                    return found
        if len(rows) < size:
            return found
        after = key(rows[-1])
        size = min(size * 2, max(MAX_BATCH, want))
