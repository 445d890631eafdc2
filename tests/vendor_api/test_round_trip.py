"""Property (issue 12): every JSON value a customer can store round-trips.

What a customer's PUT accepts is read back, exported and shared with a
vendor (``/v1/data`` with a grant) equal to what was sent, type for type
(``1`` stays an int, ``1.0`` a float, ``true`` a boolean); what cannot
round-trip (NaN, Infinity, ``1e999``) or does not fit the schema is
refused with 422 and leaves the stored document as it was.

The bodies are JSON text, not Python values, so that literals no Python
value prints (``1e999``, ``-1E400``, ``NaN``) are sent as a client would.
The oracle is Python's own lenient ``json.loads`` plus the catalogue's
rules for ``free`` values, not vrm.strictjson, so the test does not grade
the parser with itself.
"""

from __future__ import annotations

import json
import math
from typing import Any
from unittest.mock import ANY

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer

PREFERENCES = "/api/v1/me/preferences"
EXPORT = "/api/v1/me/export"

_floats = st.floats(allow_nan=False, allow_infinity=False)
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    _floats.map(repr),  # shortest text that reads back the same float
    st.builds("{}e{}".format, st.integers(-9, 9), st.integers(-420, 420)),
    st.builds("{}.{}E+{}".format, st.integers(0, 9), st.integers(0, 99), st.integers(300, 330)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1E400", "-0", "-0.0", "1.0"]),
)
STRINGS = st.text(max_size=520).map(json.dumps)  # a few over the 500 limit
SCALARS = st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "null"]))
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
)
KEYS = st.from_regex(r"[a-z][a-z0-9_.-]{0,12}", fullmatch=True)
FREE = st.dictionaries(KEYS, VALUES, max_size=4).map(
    lambda free: "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in free.items()) + "}"
)


def _canonical(value: Any) -> str:
    # Text, so that 1, 1.0 and true (equal in Python) are told apart.
    return json.dumps(value, sort_keys=True)


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _storable(value: Any) -> bool:
    """A free value as the catalogue defines it: a string of at most 500
    characters, an integer, a number, or a boolean."""
    if isinstance(value, str):
        return len(value) <= 500
    return isinstance(value, bool | int | float)


@pytest.fixture
def token(ana: Person, vendor: Vendor) -> str:
    # Function-scoped: one grant for all of a run's examples.
    return str(tokens_for(ana, vendor, "preferences:read")["access_token"])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(free=FREE)
def test_what_a_customer_stores_reads_exports_and_shares_equal_or_is_refused(
    ana: Person, vendor: Vendor, token: str, free: str
) -> None:
    sent = json.loads(free)
    before = ana.client.get(PREFERENCES)

    r = ana.client.put(
        PREFERENCES,
        content=f'{{"free": {free}}}'.encode(),
        headers={"content-type": "application/json"},
    )

    if not _finite(sent):
        event("refused: not finite")
        problem = assert_problem(r, 422, "validation", errors=ANY)
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [("body", "non_finite")]
    elif not all(_storable(v) for v in sent.values()):
        event("refused: not a free value")
        problem = assert_problem(r, 422, "validation", errors=ANY)
        assert all(e["field"].startswith("free.") for e in problem["errors"]), problem
    else:
        event("stored")
        assert r.status_code == 200, (free, r.text)
        expected = _canonical(sent)
        assert _canonical(r.json()["free"]) == expected
        assert _canonical(ana.client.get(PREFERENCES).json()["free"]) == expected
        assert _canonical(ana.client.get(EXPORT).json()["preferences"]["free"]) == expected
        shared = vendor.client.get("/v1/data/preferences", headers=bearer(token))
        assert shared.status_code == 200, shared.text
        assert _canonical(shared.json()["preferences"]["free"]) == expected
        return
    after = ana.client.get(PREFERENCES)
    assert (after.json(), after.headers["etag"]) == (before.json(), before.headers["etag"])
