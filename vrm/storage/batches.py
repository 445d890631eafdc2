"""Reads of many keys at once, in ``IN`` lists of bounded length.

One statement per few hundred keys, not one per key: a page of the feed
reads a thousand customers' keys, documents and histories in a handful of
round trips. The bound keeps each statement's parameters well under
SQLite's limit and its plan the one an index lookup gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

BATCH = 500


def batches(values: Iterable[str]) -> Iterator[list[str]]:
    """The distinct values, sorted, in lists of at most :data:`BATCH`."""
    wanted = sorted(set(values))
    for start in range(0, len(wanted), BATCH):
        yield wanted[start : start + BATCH]
