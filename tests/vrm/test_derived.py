"""The vault's memory of what it decrypted (vrm/keys/derived.py): bounded
in bytes, expiring, forgetting a customer at once, and off when either
bound is zero."""

from __future__ import annotations

import pytest

from vrm.keys import derived as derived_module
from vrm.keys.derived import OVERHEAD, Derived


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(derived_module.time, "monotonic", c)
    return c


def test_values_come_back_until_they_expire(clock: Clock) -> None:
    d = Derived(max_bytes=10_000, seconds=60)
    d.put_many([(("ana", "e", 1), "one", 3), (("bob", "e", 2), "two", 3)])
    assert d.get_many([("ana", "e", 1), ("ana", "e", 9), ("bob", "e", 2)]) == ["one", None, "two"]
    clock.now += 59.9
    assert d.get_many([("ana", "e", 1)]) == ["one"]
    clock.now += 0.2
    assert d.get_many([("ana", "e", 1), ("bob", "e", 2)]) == [None, None]
    # A value put again lives again from then on.
    d.put_many([(("ana", "e", 1), "one again", 9)])
    assert d.get_many([("ana", "e", 1)]) == ["one again"]


def test_the_bound_in_bytes_is_never_exceeded_and_the_oldest_go_first(clock: Clock) -> None:
    size = 100
    d = Derived(max_bytes=3 * (size + OVERHEAD), seconds=60)
    for n in range(5):
        d.put_many([(("ana", "e", n), n, size)])
        assert d.usage()[1] <= d.max_bytes
    assert d.usage() == (3, 3 * (size + OVERHEAD))
    assert d.get_many([("ana", "e", n) for n in range(5)]) == [None, None, 2, 3, 4]
    # Replacing a value counts its new size, not both.
    d.put_many([(("ana", "e", 4), "four", size)])
    assert d.usage() == (3, 3 * (size + OVERHEAD))
    # A value larger than the whole bound is not kept at all.
    d.put_many([(("ana", "e", 99), "huge", d.max_bytes)])
    assert d.get_many([("ana", "e", 99), ("ana", "e", 4)]) == [None, "four"]


def test_forgetting_a_customer_drops_theirs_only(clock: Clock) -> None:
    d = Derived(max_bytes=10_000, seconds=60)
    d.put_many([(("ana", "e", 1), 1, 10), (("ana", "v", 2), 2, 10), (("bob", "e", 1), 3, 10)])
    d.forget("ana")
    assert d.get_many([("ana", "e", 1), ("ana", "v", 2), ("bob", "e", 1)]) == [None, None, 3]
    assert d.usage() == (1, 10 + OVERHEAD)


@pytest.mark.parametrize(("max_bytes", "seconds"), [(0, 60.0), (10_000, 0.0)])
def test_either_bound_at_zero_keeps_nothing(clock: Clock, max_bytes: int, seconds: float) -> None:
    d = Derived(max_bytes=max_bytes, seconds=seconds)
    d.put_many([(("ana", "e", 1), "one", 3)])
    assert d.get_many([("ana", "e", 1)]) == [None]
    assert d.usage() == (0, 0)
