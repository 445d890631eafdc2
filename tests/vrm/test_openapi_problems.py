"""The OpenAPI document lists the problem answers each operation gives
(vrm/openapi.py), and what the server answers matches it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Person
from tests.consent.conftest import register_vendor
from tests.kit import bearer
from vrm.errors import PROBLEM_JSON


def operation(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = app.openapi()["paths"][path][method.lower()]
    return op


def problems_of(app: FastAPI, method: str, path: str) -> set[int]:
    return {int(s) for s in operation(app, method, path)["responses"] if s.startswith("4")}


def assert_documented(app: FastAPI, method: str, path: str, r: Any) -> None:
    """``r`` is a problem answer its operation documents, in the Problem shape."""
    documented = operation(app, method, path)["responses"].get(str(r.status_code))
    assert documented is not None, (method, path, r.status_code, r.text)
    assert documented["content"] == {
        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert r.headers["content-type"] == PROBLEM_JSON
    body = r.json()
    schema = app.openapi()["components"]["schemas"]["Problem"]
    assert set(schema["required"]) <= set(body), body
    assert body["status"] == r.status_code
    assert body["type"].startswith("urn:vrm:problem:"), body


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("POST", "/api/v1/accounts", {400, 409, 413, 415, 422}),
        ("POST", "/api/v1/session", {400, 401, 413, 415, 422, 429}),
        ("DELETE", "/api/v1/session", set()),
        ("GET", "/api/v1/me", {401}),
        ("PUT", "/api/v1/me/profile", {400, 401, 412, 413, 415, 422}),
        ("GET", "/api/v1/me/history/{event_id}", {401, 404}),
        ("POST", "/v1/history", {400, 401, 403, 409, 413, 422}),
        ("GET", "/v1/feed", {400, 401, 403, 410, 422}),
    ],
)
def test_each_operation_lists_the_problems_it_can_give(
    app: FastAPI, method: str, path: str, statuses: set[int]
) -> None:
    assert problems_of(app, method, path) == statuses


def test_fastapis_own_validation_shape_is_gone(app: FastAPI) -> None:
    document = app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "Validation Error" not in str(document["paths"])


def test_sign_up_answers_each_documented_problem(app: FastAPI, client: TestClient) -> None:
    path = "/api/v1/accounts"
    account = {"email": "dora@example.org", "password": PASSWORD}
    answers = {
        201: client.post(path, json=account),
        409: client.post(path, json=account),
        400: client.post(path, content=b"{", headers={"content-type": "application/json"}),
        413: client.post(path, content=b"x", headers={"content-length": str(10**9)}),
        415: client.post(path, content=b"{}", headers={"content-type": "text/plain"}),
        422: client.post(path, json={"email": "dora@example.org"}),
    }
    assert {s: r.status_code for s, r in answers.items()} == {s: s for s in answers}
    for status, r in answers.items():
        if status != 201:
            assert_documented(app, "POST", path, r)


def test_customer_operations_answer_their_documented_problems(
    app: FastAPI, ana: Person, client: TestClient
) -> None:
    assert_documented(app, "GET", "/api/v1/me", client.get("/api/v1/me"))
    r = ana.client.put("/api/v1/me/profile", json={}, headers={"if-match": '"0-stale"'})
    assert r.status_code == 412, r.text
    assert_documented(app, "PUT", "/api/v1/me/profile", r)
    r = ana.client.get("/api/v1/me/history/no-such-event")
    assert r.status_code == 404, r.text
    assert_documented(app, "GET", "/api/v1/me/history/{event_id}", r)
    r = ana.client.request("DELETE", "/api/v1/me", json={"password": "not the password at all"})
    assert r.status_code == 403, r.text
    assert_documented(app, "DELETE", "/api/v1/me", r)
    wrong = {"email": ana.email, "password": "not the password at all"}
    statuses = [client.post("/api/v1/session", json=wrong) for _ in range(6)]
    assert_documented(app, "POST", "/api/v1/session", statuses[0])
    assert statuses[0].status_code == 401
    assert statuses[-1].status_code == 429
    assert_documented(app, "POST", "/api/v1/session", statuses[-1])


def test_vendor_operations_answer_their_documented_problems(
    app: FastAPI, client: TestClient
) -> None:
    vendor = register_vendor(app)
    assert_documented(app, "GET", "/v1/feed", client.get("/v1/feed"))
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    token = bearer(r.json()["access_token"])
    r = client.get("/v1/feed", params={"cursor": "v1.1"}, headers=token)
    assert r.status_code == 400, r.text
    assert_documented(app, "GET", "/v1/feed", r)
    r = client.post("/v1/history", json={}, headers=token)
    assert r.status_code == 403, r.text
    assert_documented(app, "POST", "/v1/history", r)


def test_every_operation_documents_what_it_answers_anonymously(app: FastAPI) -> None:
    """Every operation, called without credentials, parameters or body: the
    answer is one its document lists."""
    client = TestClient(app, raise_server_exceptions=False)
    called = 0
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        path = context.path_format
        assert path is not None
        for method in context.methods or ():
            r = client.request(method, re.sub(r"\{[^}]+\}", "x", path))
            if r.status_code >= 400:
                assert_documented(app, method, path, r)
            called += 1
    assert called > 20
