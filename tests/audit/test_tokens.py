"""Token events on the log: issued, refreshed, revoked, reused, families
ended; named by a hash of their family, never by anything of the token."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import Session

from consent.audit import entries
from consent.vendors import service as vendors
from tests.conftest import Person
from tests.consent.conftest import Vendor, authorize, tokens_for


def _logged(app: FastAPI) -> list[dict[str, Any]]:
    with app.state.engine.connect() as conn:
        bodies = conn.execute(text("SELECT body FROM audit_entry ORDER BY idx")).scalars()
        return [entries.parse(body) for body in bodies]


def _tokens_only(app: FastAPI) -> list[dict[str, Any]]:
    return [e for e in _logged(app) if e["type"].startswith("token.")]


def _raw_log(app: FastAPI) -> bytes:
    with app.state.engine.connect() as conn:
        return b"".join(conn.execute(text("SELECT body FROM audit_entry")).scalars())


def test_issuing_and_refreshing_are_logged_under_one_family(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor, "profile.email:read")
    again = vendor.refresh(first["refresh_token"])
    assert again.status_code == 200, again.text

    issued, refreshed = _tokens_only(app)
    assert issued["type"] == "token.issued"
    assert issued["grant_type"] == "authorization_code"
    assert issued["scopes"] == ["profile.email:read"]
    assert issued["grant"] == first["grant_id"]
    assert issued["vendor"] == vendor.client_id
    assert "customer" in issued
    assert "refresh_expires_at" in issued
    assert refreshed["type"] == "token.refreshed"
    assert refreshed["grant_type"] == "refresh_token"
    assert refreshed["family"] == issued["family"]
    # Nothing of a token reaches the log: not the tokens, not their row ids.
    raw = _raw_log(app)
    for token in (first["access_token"], first["refresh_token"], again.json()["access_token"]):
        assert token.encode() not in raw
        assert token[4:36].encode() not in raw


def test_a_replayed_refresh_token_logs_the_reuse_and_the_familys_end(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor, "profile.email:read")
    assert vendor.refresh(first["refresh_token"]).status_code == 200
    assert vendor.refresh(first["refresh_token"]).status_code == 400
    found = _tokens_only(app)
    assert [e["type"] for e in found] == [
        "token.issued",
        "token.refreshed",
        "token.reuse_detected",
        "token.family_revoked",
    ]
    reuse, ended = found[2:]
    assert reuse["reused"] == "refresh_token"
    assert (ended["reason"], ended["family"]) == ("reuse", found[0]["family"])


def test_a_reused_code_logs_the_reuse(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor, "profile.email:read")
    assert vendor.exchange(auth.code, auth.verifier).status_code == 200
    assert vendor.exchange(auth.code, auth.verifier).status_code == 400
    types = [(e["type"], e.get("reused")) for e in _tokens_only(app)]
    assert types == [
        ("token.issued", None),
        ("token.reuse_detected", "authorization_code"),
        ("token.family_revoked", None),
    ]


def test_revocation_by_the_vendor_is_logged(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    first = tokens_for(ana, vendor, "profile.email:read")
    for token in (first["access_token"], first["refresh_token"]):
        r = vendor.client.post("/oauth/revoke", data={"token": token}, auth=vendor.auth)
        assert r.status_code == 200, r.text
    found = _tokens_only(app)
    assert [(e["type"], e.get("reason")) for e in found] == [
        ("token.issued", None),
        ("token.revoked", "vendor"),
        ("token.family_revoked", "vendor"),
    ]
    assert {e["family"] for e in found} == {found[0]["family"]}


def test_a_client_credentials_token_is_logged_without_a_customer(
    app: FastAPI, vendor: Vendor
) -> None:
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    (issued,) = _tokens_only(app)
    assert issued["type"] == "token.issued"
    assert issued["grant_type"] == "client_credentials"
    assert "customer" not in issued
    assert "grant" not in issued
    assert issued["scopes"] == ["feed:read"]


def test_a_userinfo_read_is_logged_with_the_fields_it_released(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    r = ana.client.put("/api/v1/me/profile", json={"email": "ana@example.org", "given_name": "Ana"})
    assert r.status_code == 200, r.text
    first = tokens_for(ana, vendor, "openid profile.email:read")
    r = vendor.client.get(
        "/oauth/userinfo", headers={"Authorization": f"Bearer {first['access_token']}"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ana@example.org"
    (read,) = [e for e in _logged(app) if e["type"] == "data.read"]
    assert read["via"] == "userinfo"
    assert (read["categories"], read["fields"]) == (["profile"], ["profile.email"])
    assert read["grant"] == first["grant_id"]
    assert b"ana@example.org" not in _raw_log(app)


def test_registering_and_disabling_a_vendor_are_logged(app: FastAPI, vendor: Vendor) -> None:
    with Session(app.state.engine) as session:
        vendors.disable(session, app.state.vault, vendor.client_id)
    found = [(e["type"], e["vendor"], e["by"]) for e in _logged(app)]
    assert found == [
        ("vendor.registered", vendor.client_id, "operator"),
        ("vendor.disabled", vendor.client_id, "operator"),
    ]
    assert _logged(app)[0]["name"] == "Bertrand Books"
