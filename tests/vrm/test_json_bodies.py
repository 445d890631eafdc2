"""Every JSON body goes through vrm.strictjson before any route sees it.

The walker below finds every route that takes a JSON body from the app
itself, so a route added later is covered without editing this file:
a number that cannot round-trip is 422 ``validation``, anything this
server does not read as JSON is 400 ``malformed-json`` (issue 12, D1 and D8).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.params import Form
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tests.conftest import Person
from tests.kit import assert_problem
from vrm import strictjson

PREFERENCES = "/api/v1/me/preferences"


def json_body_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route whose body FastAPI reads as JSON,
    path parameters filled with a placeholder."""
    found = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        if any(isinstance(p.field_info, Form) for p in route.dependant.body_params):
            continue
        assert context.path_format is not None
        path = re.sub(r"\{[^}]+\}", "x", context.path_format)
        found += [(method, path) for method in sorted(context.methods or ())]
    return found


def test_the_walker_finds_the_json_body_routes(app: FastAPI) -> None:
    # If this list changes, the walk below covers the new route by itself;
    # this only proves the walker is not walking nothing.
    assert json_body_routes(app) == [
        ("POST", "/api/v1/accounts"),
        ("POST", "/api/v1/recovery"),
        ("POST", "/api/v1/session"),
        ("PUT", "/api/v1/me/password"),
        ("DELETE", "/api/v1/me"),
        ("PUT", "/api/v1/me/profile"),
        ("PATCH", "/api/v1/me/profile"),
        ("PUT", "/api/v1/me/preferences"),
        ("PATCH", "/api/v1/me/preferences"),
        ("POST", "/api/v1/me/history"),
        ("PATCH", "/api/v1/me/history/x"),
        ("PATCH", "/api/v1/me/grants/x"),
        ("POST", "/v1/history"),
    ]


NON_FINITE = [
    (b'{"free": {"x": NaN}}', "NaN is not a JSON number this server accepts"),
    (b'{"free": {"x": Infinity}}', "Infinity is not a JSON number this server accepts"),
    (b'{"free": {"x": -Infinity}}', "-Infinity is not a JSON number this server accepts"),
    (b'{"free": {"x": 1e999}}', "a number is too large to store"),
    (b'[{"amount": -1E+400}]', "a number is too large to store"),
]


@pytest.mark.parametrize(("body", "message"), NON_FINITE)
def test_a_non_finite_number_is_422_on_every_json_route(
    app: FastAPI, client: TestClient, body: bytes, message: str
) -> None:
    for method, path in json_body_routes(app):
        r = client.request(method, path, content=body, headers={"content-type": "application/json"})
        assert_problem(
            r,
            422,
            "validation",
            detail=f"body: {message}",
            instance=path,
            errors=[{"field": "body", "message": message, "code": "non_finite"}],
        )


_NOT_JSON = "The request body is not JSON this server reads: "
_CHARSET = _NOT_JSON + "JSON is sent as UTF-8 (RFC 8259 section 8.1), not in the charset named."
MALFORMED = [
    pytest.param(
        b'{"free": {"x": "\xff"}}', "application/json", _NOT_JSON + "the body is not valid UTF-8.",
        id="invalid-utf8",
    ),
    pytest.param(
        '{"free": {"x": "caf\u00e9"}}'.encode("latin-1"), "application/json; charset=latin-1",
        _CHARSET,
        id="latin-1-charset",
    ),
    pytest.param(
        b'{"free": {}}', "application/json; charset=UTF-16",
        _CHARSET,
        id="utf-16-charset-even-on-ascii",
    ),
    pytest.param(
        b"[" * 3000 + b"]" * 3000, "application/json",
        _NOT_JSON + f"JSON nested deeper than {strictjson.MAX_DEPTH} levels.",
        id="too-deep",
    ),
    pytest.param(
        b'{"free": {"x": ' + b"9" * 5000 + b"}}", "application/json",
        _NOT_JSON + "a number is too long.",
        id="number-too-long",
    ),
    pytest.param(
        b'{"free": {"x": "\\udc00"}}', "application/json",
        _NOT_JSON + "a string holds an unpaired UTF-16 surrogate.",
        id="lone-surrogate",
    ),
    pytest.param(
        b"\xef\xbb\xbf{}", "application/json",
        "The request body is not valid JSON.",
        id="byte-order-mark",
    ),
    pytest.param(
        b'{"free": ', "application/merge-patch+json", "The request body is not valid JSON.",
        id="syntax",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type", "detail"), MALFORMED)
def test_a_body_this_server_does_not_read_as_json_is_400_malformed_json_on_every_json_route(
    app: FastAPI, client: TestClient, body: bytes, content_type: str, detail: str
) -> None:
    for method, path in json_body_routes(app):
        r = client.request(method, path, content=body, headers={"content-type": content_type})
        assert_problem(r, 400, "malformed-json", detail=detail, instance=path)


def test_a_refused_patch_leaves_the_stored_preferences_as_they_were(ana: Person) -> None:
    r = ana.client.put(PREFERENCES, json={"free": {"x": 1}})
    assert r.status_code == 200, r.text
    before = r.json(), r.headers["etag"]

    r = ana.client.patch(
        PREFERENCES,
        content=b'{"free": {"x": 1e999}}',
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 422, r.text

    r = ana.client.get(PREFERENCES)
    assert (r.json(), r.headers["etag"]) == before


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", 'application/json; charset="UTF-8"', "application/json"],
)
def test_utf8_as_declared_or_implied_is_read(ana: Person, content_type: str) -> None:
    r = ana.client.put(
        PREFERENCES,
        content='{"free": {"x": "caf\u00e9"}}'.encode(),
        headers={"content-type": content_type},
    )
    assert r.status_code == 200, r.text
    assert r.json()["free"] == {"x": "caf\u00e9"}


def test_the_body_reaches_the_route_intact_when_sent_in_chunks(ana: Person) -> None:
    def chunks() -> Any:
        yield b'{"free": {"a": '
        yield b'"b", "n": 1.5}}'

    r = ana.client.put(PREFERENCES, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["free"] == {"a": "b", "n": 1.5}


def test_a_second_content_type_does_not_get_a_body_past_the_check(
    app: FastAPI, client: TestClient
) -> None:
    # FastAPI reads the first Content-Type; so must the check in front of it.
    headers = [("content-type", "application/json"), ("content-type", "text/plain")]
    for method, path in json_body_routes(app):
        r = client.request(method, path, content=b'{"free": {"x": NaN}}', headers=headers)
        assert r.status_code == 422, (method, path, r.text)
        assert r.json()["errors"] == [
            {
                "field": "body",
                "message": "NaN is not a JSON number this server accepts",
                "code": "non_finite",
            }
        ], (method, path)
