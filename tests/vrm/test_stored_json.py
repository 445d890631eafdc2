"""A stored document is parsed into exactly the values the standard
library gives (vrm/records/service.py reads it with orjson where that is
the same): integers stay integers of any size, floats stay floats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vrm.records.service import _stored_json

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**62, max_value=2**66)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _typed(value: Any) -> Any:
    """The value with each number's type, so 1 and 1.0 (and 0.0 and -0.0)
    differ."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    return (type(value).__name__, repr(value))


@given(st.dictionaries(st.text(), VALUES, max_size=6))
def test_documents_parse_as_the_standard_library_parses_them(document: dict[str, Any]) -> None:
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
        data = text.encode("utf-8", "surrogatepass")
        assert _typed(_stored_json(data)) == _typed(json.loads(data))


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 123456789012345678901234567890}',
        '{"n": -9223372036854775809, "m": 18446744073709551616}',
        '{"x": 1e999, "y": NaN}',
        '{"s": "\\ud800"}',
        '{"z": -0.0, "w": 1E5, "v": 0.1, "u": -0}',
    ],
)
def test_what_orjson_reads_otherwise_is_read_by_the_standard_library(text: str) -> None:
    data = text.encode()
    assert _typed(_stored_json(data)) == _typed(json.loads(data))
