"""The one parser for JSON from outside refuses what cannot round-trip."""

from __future__ import annotations

import json

import pytest

from vrm import strictjson
from vrm.strictjson import Malformed, NonFinite


@pytest.mark.parametrize("text", ['{"x": NaN}', '{"x": Infinity}', "[-Infinity]", '{"x": 1e999}'])
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(NonFinite):
        strictjson.loads(text)


def test_non_finite_is_not_a_syntax_error() -> None:
    # The API answers it with 422 (a well-formed value it cannot hold), not 400.
    with pytest.raises(NonFinite) as caught:
        strictjson.loads("[NaN]")
    assert not isinstance(caught.value, json.JSONDecodeError)
    assert caught.value.reason == "non-finite"


def test_finite_numbers_round_trip() -> None:
    text = '{"a": 1.5, "b": -2, "c": 1e308, "d": 0.1, "e": 12345678901234567890}'
    assert strictjson.loads(text) == json.loads(text)


@pytest.mark.parametrize("depth", [5000, 100, strictjson.MAX_DEPTH + 1])
def test_nesting_deeper_than_the_limit_is_malformed(depth: int) -> None:
    with pytest.raises(Malformed) as caught:
        strictjson.loads("[" * depth + "]" * depth)
    assert caught.value.reason == "too-deep"


def test_nesting_at_the_limit_is_accepted() -> None:
    depth = strictjson.MAX_DEPTH
    value = strictjson.loads('{"a":' * (depth - 1) + "[]" + "}" * (depth - 1))
    for _ in range(depth - 1):
        value = value["a"]
    assert value == []


def test_a_too_long_number_is_malformed() -> None:
    with pytest.raises(Malformed) as caught:
        strictjson.loads("9" * 5000)
    assert caught.value.reason == "number-too-long"
    with pytest.raises(Malformed):
        strictjson.loads("0." + "1" * 100)


def test_invalid_utf8_is_malformed() -> None:
    with pytest.raises(Malformed) as caught:
        strictjson.loads(b'{"a": "\xff"}')
    assert caught.value.reason == "encoding"


def test_an_unpaired_surrogate_is_malformed_and_a_pair_is_not() -> None:
    with pytest.raises(Malformed) as caught:
        strictjson.loads('{"a": "\\ud800"}')
    assert caught.value.reason == "encoding"
    with pytest.raises(Malformed):
        strictjson.loads('{"\\udfff": 1}')
    assert strictjson.loads('"\\ud83d\\ude00"') == "\U0001f600"


def test_syntax_errors_are_malformed_and_json_decode_errors() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        strictjson.loads("{")
    assert isinstance(caught.value, Malformed)
    assert caught.value.reason == "syntax"


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/json",
        "application/json; charset=utf-8",
        'application/json; charset="UTF8"',
        "application/json; profile=x; charset=UTF-8",
        "application/json; charset*=utf-8''utf-8",
    ],
)
def test_a_body_in_utf8_is_read_whatever_the_header_says_of_it(content_type: str | None) -> None:
    assert strictjson.loads_body('{"a": "é"}'.encode(), content_type) == {"a": "é"}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json; charset=latin-1",
        "application/json; charset=utf-16",
        "application/json; charset*=us-ascii''utf-16",
        "application/json; profile=x; charset=iso-8859-1",
    ],
)
def test_a_body_in_another_charset_is_malformed_even_when_it_decodes(content_type: str) -> None:
    # RFC 8259 section 8.1: the sender meant other characters than UTF-8 gives.
    with pytest.raises(Malformed) as caught:
        strictjson.loads_body(b'{"a": 1}', content_type)
    assert caught.value.reason == "encoding"


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("application/merge-patch+json", True),
        ("text/json", False),
        ("application/x-www-form-urlencoded", False),
        ("", False),
        (None, False),
    ],
)
def test_json_media_types_are_those_fastapi_parses(
    content_type: str | None, expected: bool
) -> None:
    assert strictjson.is_json_media(content_type) is expected
