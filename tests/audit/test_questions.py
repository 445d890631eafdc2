"""The auditors' questions: grants held at a time, purpose limitation,
reads after a withdrawal, live tokens of ended grants. Each is asked of a
clean history (the answer must be none) and of one with the fault planted
(the answer must name it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.audit.kit import plant_read
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer, vrm
from vrm.dbtypes import utcnow
from vrm.settings import Settings

Q = "/audit/v1/questions/"


@pytest.fixture
def auditor_token(settings: Settings, app: FastAPI, client: TestClient) -> str:
    added = json.loads(vrm(settings, "auditors", "add", "--name", "Ines", "--json").stdout)
    r = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "audit:read"},
        auth=(added["client_id"], added["client_secret"]),
    )
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


def _ask(client: TestClient, token: str, question: str, **params: Any) -> dict[str, Any]:
    r = client.get(Q + question, params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _read(vendor: Vendor, token: str, path: str = "/v1/data") -> None:
    r = vendor.client.get(path, headers=bearer(token))
    assert r.status_code == 200, r.text


def test_the_questions_of_a_clean_history_and_of_a_faulty_one(
    app: FastAPI, client: TestClient, ana: Person, vendor: Vendor, auditor_token: str
) -> None:
    r = ana.client.put("/api/v1/me/preferences", json={"communication": {"channels": ["email"]}})
    assert r.status_code == 200, r.text
    tokens = tokens_for(ana, vendor, "profile.email:read preferences:read")
    grant = tokens["grant_id"]
    _read(vendor, tokens["access_token"])
    granted_at = utcnow()
    r = ana.client.patch(f"/api/v1/me/grants/{grant}", json={"scopes": ["profile.email:read"]})
    assert r.status_code == 200, r.text
    _read(vendor, tokens["access_token"])
    narrowed_at = utcnow()
    assert ana.client.delete(f"/api/v1/me/grants/{grant}").status_code == 204
    v = vendor.client_id

    held = _ask(client, auditor_token, "grants-held", vendor=v, at=granted_at.isoformat())
    assert [(g["grant"], g["scopes"], g["purpose"]) for g in held["grants"]] == [
        (grant, ["preferences:read", "profile.email:read"], "dpv:ServiceProvision")
    ]
    held = _ask(client, auditor_token, "grants-held", vendor=v, at=narrowed_at.isoformat())
    assert held["grants"][0]["scopes"] == ["profile.email:read"]
    assert len(held["grants"][0]["entries"]) == 2  # granted, then narrowed
    assert (
        _ask(client, auditor_token, "grants-held", vendor=v, at=utcnow().isoformat())["grants"]
        == []
    )

    clean = _ask(client, auditor_token, "purpose-limitation", vendor=v)
    assert (len(clean["checked"]), clean["violations"], clean["unchecked"]) == (2, [], [])
    clean = _ask(client, auditor_token, "withdrawals", vendor=v)["withdrawals"]
    assert [(w["type"], w["reads_after"]) for w in clean] == [
        ("consent.narrowed", []),
        ("consent.revoked", []),
    ]
    assert _ask(client, auditor_token, "live-tokens-of-ended-grants")["families"] == []

    # The faults: a read of a field the narrowing took away, and tokens of
    # the revoked grant brought back to life.
    planted = plant_read(
        app.state.engine,
        customer_id=ana.id,
        vendor_id=v,
        grant_id=grant,
        fields=["preferences.communication"],
    )
    faulty = _ask(client, auditor_token, "purpose-limitation", vendor=v)
    assert [x["index"] for x in faulty["violations"]] == [planted]
    assert "after the grant ended" in faulty["violations"][0]["problem"]
    faulty = _ask(client, auditor_token, "withdrawals", vendor=v)["withdrawals"]
    assert [w["reads_after"] for w in faulty] == [[planted], [planted]]
    with app.state.engine.begin() as conn:
        conn.execute(text("UPDATE oauth_token SET revoked_at = NULL"))
    live = _ask(client, auditor_token, "live-tokens-of-ended-grants")["families"]
    assert [(f["grant"], f["vendor"]) for f in live] == [(grant, v)]
    logged = {
        e["entry"]["family"]
        for e in _ask(client, auditor_token, "../entries", type="token.issued")["items"]
        if e["entry"].get("grant") == grant
    }
    assert {f["family"] for f in live} == logged


def test_only_auditors_ask(
    client: TestClient, ana: Person, vendor: Vendor, auditor_token: str
) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")["access_token"]
    at = datetime.now(UTC).isoformat()
    for question, params in (
        ("grants-held", {"vendor": vendor.client_id, "at": at}),
        ("purpose-limitation", {"vendor": vendor.client_id}),
        ("withdrawals", {"vendor": vendor.client_id}),
        ("live-tokens-of-ended-grants", {}),
    ):
        r = client.get(Q + question, params=params, headers=bearer(token))
        assert_problem(r, 403, "insufficient-scope", scope="audit:read")
        r = client.get(Q + question, params=params, headers=bearer(auditor_token))
        assert r.status_code == 200, r.text
