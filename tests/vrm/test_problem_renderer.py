"""Every problem+json answer is rendered by one function
(vrm.problems.problem_for), whichever part of the server gives it: the body
limit in front of everything, FastAPI's handlers, the router, and the lean
vendor apps. So each carries the same members and the same headers."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Person
from tests.kit import assert_problem
from vrm.records import service as records

MEMBERS = ["detail", "instance", "status", "title", "type"]
# Every answer's headers (vrm/headers.py) but Content-Length, which
# depends on the body, and the 413's Connection: close.
HEADERS = ["cache-control", "content-type", "x-content-type-options"]


def _broken(**_: Any) -> None:
    raise RuntimeError("the documents went away")


def _shape(r: Response) -> tuple[int, list[str], list[str], dict[str, Any]]:
    body = r.json()
    names = sorted(h for h in r.headers if h not in ("content-length", "connection"))
    return r.status_code, sorted(body), names, {"type": body["type"], "title": body["title"]}


def test_every_problem_has_the_same_members_and_headers(
    app: FastAPI, ana: Person, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    limit = app.state.settings.max_body_bytes
    client = TestClient(app, cookies=ana.client.cookies)
    too_large = client.put(
        "/api/v1/me/profile", content=b"{" + b" " * limit + b"}", headers={"If-Match": "*"}
    )
    malformed = client.put(
        "/api/v1/me/profile",
        content=b"{not json",
        headers={"Content-Type": "application/json", "If-Match": "*"},
    )
    no_route = client.get("/api/v1/me/nothing-here")
    lean_too_large = client.post("/oauth/token", content=b"x" * (limit + 1))
    monkeypatch.setattr(records, "read_document", _broken)
    with caplog.at_level("ERROR"):
        broken = client.get("/api/v1/me/profile")

    assert _shape(too_large) == (
        413,
        MEMBERS,
        HEADERS,
        {"type": "urn:vrm:problem:payload-too-large", "title": "Request body too large"},
    )
    assert too_large.headers["connection"] == "close"
    assert _shape(lean_too_large) == _shape(too_large)
    assert _shape(malformed) == (
        400,
        MEMBERS,
        HEADERS,
        {"type": "urn:vrm:problem:malformed-json", "title": "Malformed JSON"},
    )
    assert_problem(no_route, 404, "not-found", detail="No such resource.")
    assert _shape(no_route)[2] == HEADERS
    assert _shape(broken) == (
        500,
        MEMBERS,
        HEADERS,
        {"type": "urn:vrm:problem:internal", "title": "Internal server error"},
    )
    for r in (too_large, malformed, no_route, broken, lean_too_large):
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == r.status_code
