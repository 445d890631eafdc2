"""Every answer carries the security headers (vrm/headers.py): nosniff
everywhere, and ``Cache-Control: no-store`` on personal answers unless the
route says why caching is safe."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Route

from tests.conftest import PASSWORD, Person, assert_unhandled_500
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.kit import bearer
from vrm.headers import PRIVATE_PREFIXES
from vrm.records import service as records

# Answers under the private prefixes that may be cached, and why (each is
# said beside the route too).
CACHEABLE = {
    # The keys that verify ID tokens: public, nothing personal.
    "/oauth/jwks": "public, max-age=300",
}


def assert_secured(r: Any, cache_control: str = "no-store") -> None:
    assert r.headers.get_list("x-content-type-options") == ["nosniff"], r.headers
    assert r.headers.get_list("cache-control") == [cache_control], r.headers


def test_sign_up_log_in_and_me_are_never_stored(client: TestClient) -> None:
    account = {"email": "cleo@example.org", "password": PASSWORD}
    r = client.post("/api/v1/accounts", json=account)
    assert r.status_code == 201, r.text
    assert_secured(r)
    r = client.post("/api/v1/session", json=account)
    assert r.status_code == 200, r.text
    assert_secured(r)
    r = client.get("/api/v1/me")
    assert r.status_code == 200, r.text
    assert_secured(r)


def test_grant_list_and_grant_are_never_stored(ana: Person, vendor: Vendor) -> None:
    grant_id = tokens_for(ana, vendor)["grant_id"]
    r = ana.client.get("/api/v1/me/grants")
    assert r.status_code == 200, r.text
    assert_secured(r)
    r = ana.client.get(f"/api/v1/me/grants/{grant_id}")
    assert r.status_code == 200, r.text
    assert_secured(r)


def test_lean_token_endpoint_answers_carry_nosniff(vendor: Vendor) -> None:
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    assert_secured(r)
    assert r.headers["pragma"] == "no-cache"
    r = vendor.client.post("/oauth/token", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 400, r.text
    assert_secured(r)


def test_lean_read_keeps_its_own_cache_policy_and_gains_nosniff(
    ana: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor)["access_token"]
    r = vendor.client.get("/v1/data", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert_secured(r, "private, no-cache")
    r = vendor.client.get("/v1/data", headers=bearer("not-a-token"))
    assert r.status_code == 401, r.text
    assert_secured(r)


def test_body_limit_answer_of_a_lean_endpoint_carries_nosniff(client: TestClient) -> None:
    r = client.post("/oauth/token", headers={"content-length": str(10**9)})
    assert r.status_code == 413, r.text
    assert_secured(r)


def _broken(**_: Any) -> None:
    raise RuntimeError("the documents went away")


def test_unhandled_error_of_a_route_carries_the_headers(
    app: FastAPI, ana: Person, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The 500 of Starlette's ServerErrorMiddleware, which runs outside the
    middleware stack."""
    monkeypatch.setattr(records, "read_document", _broken)
    client = TestClient(app, raise_server_exceptions=False, cookies=ana.client.cookies)
    with caplog.at_level("ERROR", logger="vrm.errors"):
        r = client.get("/api/v1/me/profile")
    assert_unhandled_500(r, caplog, "GET", "/api/v1/me/profile")
    assert_secured(r)


def test_unhandled_error_of_a_lean_read_carries_the_headers(
    ana: Person, vendor: Vendor, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = tokens_for(ana, vendor)["access_token"]
    monkeypatch.setattr(records, "read_fields_of", _broken)
    with caplog.at_level("ERROR", logger="vrm.errors"):
        r = vendor.client.get("/v1/data/profile", headers=bearer(token))
    assert_unhandled_500(r, caplog, "GET", "/v1/data/profile")
    assert_secured(r)


def _probe_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_every_route_and_method_answers_with_the_headers(app: FastAPI) -> None:
    """Anonymous calls to every route, every method it has: each answer
    carries nosniff, and each under a private prefix says how it may be
    cached (no-store unless listed in CACHEABLE)."""
    register_vendor(app)
    client = TestClient(app, raise_server_exceptions=False)
    seen = 0
    for context in iter_route_contexts(app.routes):
        path = context.path_format
        if not isinstance(context.original_route, Route) or path is None:
            continue
        for method in sorted(context.methods or ()):
            r = client.request(method, _probe_path(path))
            assert r.status_code < 500, (method, path, r.text)
            assert r.headers.get_list("x-content-type-options") == ["nosniff"], (method, path)
            if path.startswith(PRIVATE_PREFIXES):
                expected = CACHEABLE.get(path, "no-store")
                assert r.headers.get_list("cache-control") == [expected], (method, path)
            seen += 1
    assert seen > 40
