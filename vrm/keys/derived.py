"""What was decrypted, kept in memory for a while, so that a record read
again and again is opened once (docs/performance.md#history-reads).

Held by the vault, beside the data keys it caches, and under the same
rules: in process memory only, never written anywhere; for no longer than
the data keys are cached (``key_cache_seconds``); dropped at once in this
process when the customer's keys are shredded (other processes drop theirs
within that time, and never find them meanwhile: the records they came from
are gone). Bounded in bytes: the oldest go first.

Keys are tuples whose first element is the customer id (for the shred) and
which name the exact ciphertext the value came from (its record, key version
and authentication tag), so a record written again, by anyone, is a
different key: a value is never served for content it was not derived from.
What a value may be shown to, its owner decides on every read.

Values are best plain tuples of strings, numbers and right-sized bytes: the
garbage collector stops tracking those, where it would walk a named tuple,
a dict or an instance of a subclass of bytes on every full collection, and
the bound counts lengths, not what an allocator rounded them up to.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import Any

# Bookkeeping per entry beyond the value's own size (the key tuple, the
# entry, the dict's slot), roughly, for the bound.
OVERHEAD = 300


class Derived:
    """A bounded, expiring map of decrypted values. The oldest go first when
    it is full: a value expires after ``seconds`` however often it is used,
    so "least recently used" would keep nothing longer."""

    def __init__(self, *, max_bytes: int, seconds: float) -> None:
        self.max_bytes = max_bytes
        self.seconds = seconds
        # key -> (expires at, value, size), oldest first. An OrderedDict,
        # not a dict: taking a dict's oldest key walks every slot deleted
        # before it, so evicting one entry after another grew quadratic
        # (36 µs an eviction at 80,000 entries; a full memory evicts one
        # per event read).
        self._entries: OrderedDict[tuple[Hashable, ...], tuple[float, Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0 and self.seconds > 0

    def get_many(self, keys: Sequence[tuple[Hashable, ...]]) -> list[Any]:
        """The value of each key, or None where there is none (or it expired).
        Lock-free: a dict lookup is atomic, and an expired entry is left for
        the next put to replace or evict."""
        entries = self._entries
        if not entries:
            return [None] * len(keys)
        now = time.monotonic()
        found: list[Any] = []
        for key in keys:
            entry = entries.get(key)
            found.append(entry[1] if entry is not None and entry[0] > now else None)
        return found

    def put_many(self, items: Sequence[tuple[tuple[Hashable, ...], Any, int]]) -> None:
        """Keep each (key, value, size in bytes), evicting the oldest beyond
        the bound."""
        if not self.enabled or not items:
            return
        expires = time.monotonic() + self.seconds
        with self._lock:
            entries = self._entries
            for key, value, size in items:
                size += OVERHEAD
                if size > self.max_bytes:
                    continue
                old = entries.pop(key, None)
                if old is not None:
                    self._bytes -= old[2]
                entries[key] = (expires, value, size)
                self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= entries.popitem(last=False)[1][2]

    def forget(self, customer_id: str) -> None:
        """Drop everything derived from the customer's records."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == customer_id]:
                self._bytes -= self._entries.pop(key)[2]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def usage(self) -> tuple[int, int]:
        """(entries, bytes counted against the bound)."""
        with self._lock:
            return len(self._entries), self._bytes
