"""A 405 lists, in ``Allow``, every method the path answers (RFC 9110
15.5.6), whichever route refused it, as a method-not-allowed problem."""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Person
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import assert_problem, bearer

METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def assert_method_not_allowed(r: Response, path: str, allow: str) -> None:
    detail = f"This resource answers {allow}."
    assert_problem(r, 405, "method-not-allowed", detail=detail, instance=path)
    assert r.headers["allow"] == allow


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/api/v1/me", "DELETE, GET"),
        ("POST", "/api/v1/me/profile", "GET, PATCH, PUT"),
        ("PUT", "/api/v1/me/history", "GET, POST"),
        ("POST", "/api/v1/me/history/some-event", "DELETE, GET, PATCH"),
        ("GET", "/api/v1/session", "DELETE, POST"),
        ("DELETE", "/oauth/authorize", "GET, POST"),
        ("GET", "/oauth/token", "POST"),
        ("PUT", "/v1/data/profile", "GET"),
    ],
)
def test_405_lists_every_method_of_the_path(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    r = client.request(method, path)
    assert_method_not_allowed(r, path, allow)


def test_head_of_a_vendor_read_is_refused_and_not_offered(app: FastAPI, ana: Person) -> None:
    """A HEAD would record a read that sent no data (vrm/vendor_api/reads.py),
    so Allow must not offer it."""
    vendor = register_vendor(app)
    token = tokens_for(ana, vendor, "profile:read")["access_token"]
    r = vendor.client.head("/v1/data/profile", headers=bearer(token))
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"
    r = vendor.client.post("/v1/data/profile", headers=bearer(token))
    assert_method_not_allowed(r, "/v1/data/profile", "GET")


def test_every_path_refuses_other_methods_with_its_full_allow_list(app: FastAPI) -> None:
    """Every path of the route table, every method it does not answer."""
    allowed: dict[str, set[str]] = defaultdict(set)
    for context in iter_route_contexts(app.routes):
        if context.path_format is not None and context.methods:
            allowed[context.path_format] |= context.methods
    client = TestClient(app, raise_server_exceptions=False)
    checked = 0
    for template, methods in allowed.items():
        path = re.sub(r"\{[^}]+\}", "x", template)
        allow = ", ".join(sorted(methods))
        for method in METHODS:
            if method in methods:
                continue
            r = client.request(method, path)
            assert r.status_code == 405, (method, path, r.text)
            assert r.headers["allow"] == allow, (method, path)
            checked += 1
    assert checked > 100
