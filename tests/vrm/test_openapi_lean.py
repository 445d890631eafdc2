"""The OpenAPI document describes every route the app answers: the lean
vendor reads and the OAuth endpoints too (vrm/openapi_lean.py), not only
FastAPI's own operations."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from client.web.routes import ROUTERS as CUSTOMER_PAGES
from vrm.catalogue import CATEGORIES

# Served but not API: pages for people (the documentation, the login form,
# the device page of RFC 8628 3.3, the customer's pages) and the health check.
NOT_API = {"/docs", "/openapi.json", "/healthz", "/docs/assets/{name}", "/login", "/device"} | {
    context.path_format
    for router in CUSTOMER_PAGES
    for context in iter_route_contexts(router.routes)
}


def _document(app: FastAPI) -> dict[str, Any]:
    r = TestClient(app).get("/openapi.json")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_every_route_of_the_app_is_documented(app: FastAPI) -> None:
    paths = _document(app)["paths"]
    routes = {
        (method.lower(), context.path_format)
        for context in iter_route_contexts(app.routes)
        if context.path_format not in NOT_API
        for method in (context.methods or set()) - {"HEAD"}
    }
    documented = {(method, path) for path, ops in paths.items() for method in ops}
    assert ("post", "/oauth/token") in routes
    assert routes - documented == set()


def test_the_data_reads_are_documented_with_their_problems(app: FastAPI) -> None:
    paths = _document(app)["paths"]
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    history = paths["/v1/data/history"]["get"]
    assert sorted(history["responses"]) == ["200", "304", "400", "401", "403", "410", "422"]
    assert history["responses"]["422"] == {"description": "Request is invalid", "content": problem}
    assert [(p["name"], p["in"]) for p in history["parameters"]] == [
        ("since", "query"),
        ("limit", "query"),
    ]
    one = paths["/v1/data/{category}"]["get"]
    assert sorted(one["responses"]) == ["200", "304", "401", "403", "404"]
    assert one["parameters"][0]["schema"] == {"type": "string", "enum": sorted(CATEGORIES)}
    assert sorted(paths["/v1/data"]["get"]["responses"]) == ["200", "304", "401", "403"]


def test_the_oauth_endpoints_keep_their_own_error_format(app: FastAPI) -> None:
    document = _document(app)
    token = document["paths"]["/oauth/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["grant_type"]["enum"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]
    oauth_error = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
    assert token["responses"]["400"]["content"] == oauth_error
    assert token["responses"]["401"]["content"] == oauth_error
    assert document["components"]["schemas"]["OAuthError"]["required"] == ["error"]
    assert sorted(document["paths"]["/oauth/register/{client_id}"]) == ["delete", "get", "put"]
