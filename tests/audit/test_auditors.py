"""Auditors: registered by the operator, they read the whole log, with
customers as pseudonyms, and nothing else; vendors and customers cannot
read the audit API. Each rule is tried from the side that would break it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from consent.audit import log, merkle, tiles, tree
from tests.conftest import Person
from tests.consent.conftest import Vendor, start, tokens_for
from tests.kit import assert_problem, bearer, vrm
from vrm.settings import Settings

ENTRIES = "/audit/v1/entries"


@pytest.fixture
def auditor(settings: Settings, app: FastAPI) -> dict[str, Any]:
    ran = vrm(settings, "auditors", "add", "--name", "Ines Inspector", "--json")
    assert ran.returncode == 0, ran.stderr
    added: dict[str, Any] = json.loads(ran.stdout)
    assert added["client_id"].startswith("aud_")
    assert added["grant_types"] == ["client_credentials"]
    assert added["redirect_uris"] == []
    return added


def _token(client: TestClient, auth: tuple[str, str], scope: str) -> Any:
    return client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "scope": scope}, auth=auth
    )


def _auditor_token(client: TestClient, auditor: dict[str, Any]) -> str:
    r = _token(client, (auditor["client_id"], auditor["client_secret"]), "audit:read")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "audit:read"
    token: str = r.json()["access_token"]
    return token


def test_an_auditor_reads_every_entry_with_customers_as_pseudonyms(
    app: FastAPI, client: TestClient, ana: Person, vendor: Vendor, auditor: dict[str, Any]
) -> None:
    tokens_for(ana, vendor, "profile.email:read")
    r = client.get(ENTRIES, headers=bearer(_auditor_token(client, auditor)))
    assert r.status_code == 200, r.text
    found = [item["entry"]["type"] for item in r.json()["items"]]
    assert found == [
        "vendor.registered",
        "auditor.registered",
        "consent.granted",
        "token.issued",
        "token.issued",  # the auditor's own
    ]
    assert r.json()["next_cursor"] is None
    for secret in (ana.id, ana.email):
        assert secret not in r.text


def test_the_entries_filter_and_page(
    app: FastAPI,
    client: TestClient,
    ana: Person,
    bob: Person,
    vendor: Vendor,
    other_vendor: Vendor,
    auditor: dict[str, Any],
) -> None:
    tokens_for(ana, vendor, "profile.email:read")
    tokens_for(bob, other_vendor, "preferences:read")
    token = _auditor_token(client, auditor)

    def entries(**params: Any) -> dict[str, Any]:
        r = client.get(ENTRIES, params=params, headers=bearer(token))
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    granted = entries(type="consent.granted")["items"]
    assert [i["entry"]["vendor"] for i in granted] == [vendor.client_id, other_vendor.client_id]
    assert [i["entry"]["type"] for i in entries(vendor=other_vendor.client_id)["items"]] == [
        "vendor.registered",
        "consent.granted",
        "token.issued",
    ]
    anas = granted[0]["entry"]["customer"]
    assert {i["entry"]["customer"] for i in entries(customer=anas)["items"]} == {anas}
    assert len(entries(type="consent", purpose="dpv:ServiceProvision")["items"]) == 2
    assert entries(type="consent", purpose="dpv:Marketing")["items"] == []
    walked, cursor = [], None
    while True:
        page = entries(limit=2, **({"cursor": cursor} if cursor else {}))
        walked += [i["index"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [i["index"] for i in entries()["items"]]
    assert walked == list(range(len(walked)))
    r = client.get(ENTRIES, params={"type": "wiped"}, headers=bearer(token))
    assert r.status_code == 422, r.text


def test_an_auditor_cannot_read_customer_data(
    app: FastAPI, client: TestClient, ana: Person, auditor: dict[str, Any]
) -> None:
    auth = (auditor["client_id"], auditor["client_secret"])
    token = _auditor_token(client, auditor)
    for path in ("/v1/data", "/v1/data/profile", "/v1/feed", "/oauth/userinfo"):
        r = client.get(path, headers=bearer(token))
        assert r.status_code in (401, 403), (path, r.text)
        assert "ana" not in r.text
    for scope in ("feed:read", "profile:read", "audit:read profile.email:read", "openid"):
        r = _token(client, auth, scope)
        assert r.status_code == 400, (scope, r.text)
        assert r.json()["error"] == "invalid_scope"
    # Nor can it ask a customer for consent: it has no redirect URI and no
    # authorization code grant.
    auditor_as_vendor = Vendor(auth[0], auth[1], "https://shop.example/callback", client)
    page = start(ana, auditor_as_vendor, "profile.email:read").page
    assert page.status_code == 400, page.text


def test_vendors_and_customers_cannot_read_the_audit_api(
    app: FastAPI, client: TestClient, ana: Person, vendor: Vendor
) -> None:
    _append_and_sign(app)
    grant_token = tokens_for(ana, vendor, "profile.email:read")["access_token"]
    r = _token(client, vendor.auth, "feed:read")
    assert r.status_code == 200, r.text
    feed_token = r.json()["access_token"]
    for path in (ENTRIES, "/audit/v1/tile/entries/000.p/1"):
        assert_problem(client.get(path), 401, "invalid-token")
        assert_problem(ana.client.get(path), 401, "invalid-token")  # a session is no token
        for token in (grant_token, feed_token):
            r = client.get(path, headers=bearer(token))
            assert_problem(r, 403, "insufficient-scope", scope="audit:read")
            assert 'scope="audit:read"' in r.headers["www-authenticate"]
    # A vendor cannot take the auditors' scope.
    r = _token(client, vendor.auth, "audit:read")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")
    r = _token(client, vendor.auth, "feed:read audit:read")
    assert (r.status_code, r.json()["error"]) == (400, "invalid_scope")


def _append_and_sign(app: FastAPI) -> None:
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)


def test_entry_bundles_hold_the_leaves_of_the_tiles(
    app: FastAPI, client: TestClient, ana: Person, vendor: Vendor, auditor: dict[str, Any]
) -> None:
    tokens_for(ana, vendor, "profile.email:read")
    _append_and_sign(app)
    with app.state.engine.connect() as conn:
        size = log.size(conn)
    token = _auditor_token(client, auditor)
    r = client.get(f"/audit/v1/tile/entries/000.p/{size}", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
    bodies = tiles.decode_bundle(r.content, size)
    hashes = client.get(f"/audit/v1/tile/0/000.p/{size}").content
    assert b"".join(merkle.leaf_hash(b) for b in bodies) == hashes
    # Beyond the checkpoint: nothing.
    r = client.get(f"/audit/v1/tile/entries/000.p/{size + 1}", headers=bearer(token))
    assert_problem(r, 404, "not-found")


def test_an_auditor_is_listed_and_disabled_by_the_operator(
    settings: Settings, client: TestClient, auditor: dict[str, Any]
) -> None:
    listed = vrm(settings, "auditors", "list", "--json")
    assert [a["client_id"] for a in json.loads(listed.stdout)] == [auditor["client_id"]]
    assert json.loads(vrm(settings, "vendors", "list", "--json").stdout) == []
    ran = vrm(settings, "auditors", "disable", auditor["client_id"])
    assert ran.returncode == 0, ran.stderr
    r = _token(client, (auditor["client_id"], auditor["client_secret"]), "audit:read")
    assert r.status_code == 401, r.text
    ran = vrm(settings, "auditors", "add", "--name", "  ")
    assert ran.returncode == 1
    assert ran.stderr.startswith("vrm: ")
