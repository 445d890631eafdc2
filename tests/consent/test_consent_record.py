"""The consent record keeps the vendor as the customer saw it.

A dynamically registered vendor can rename itself and change its policy at
its registration management endpoint (RFC 7592 section 2.2). What the
customer agreed to does not change with it: the grant's ``granted`` entry
keeps a copy of the vendor as the consent page showed it, the grant view and
the signed receipt are made from that copy, and a later change is shown as
such. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import KeySet
from sqlalchemy import JSON, Connection, bindparam, column, text
from sqlmodel import Session

from consent.vendors import service as vendors
from tests.conftest import Person
from tests.consent.conftest import ISSUER, REDIRECT_URI, Vendor, decide, start, tokens_for
from tests.kit import bearer
from vrm.dbtypes import utcnow
from vrm.migrate import alembic_config
from vrm.settings import Settings

GRANTS = "/api/v1/me/grants"
AS_CONSENTED = {
    "client_name": "Livraria Lello",
    "redirect_uris": [REDIRECT_URI],
    "policy_uri": "https://lello.example/privacy",
    "logo_uri": "https://lello.example/logo.png",
    "contacts": ["dpo@lello.example"],
}
RENAMED = AS_CONSENTED | {
    "client_name": "Lello Data Brokers",
    "policy_uri": "https://lello.example/privacy-v2",
}


def _register(app: FastAPI) -> tuple[Vendor, dict[str, Any]]:
    """A vendor that registered itself (RFC 7591), with its registration."""
    web = TestClient(app)
    with Session(app.state.engine) as session:
        initial = vendors.issue_initial_access_token(
            session, app.state.vault, label="Lello onboarding", ttl=timedelta(days=1)
        )
    r = web.post("/oauth/register", json=AS_CONSENTED, headers=bearer(initial))
    assert r.status_code == 201, r.text
    reg: dict[str, Any] = r.json()
    return Vendor(reg["client_id"], reg["client_secret"], REDIRECT_URI, web), reg


def _vendor_updates(vendor: Vendor, registration: dict[str, Any], **metadata: Any) -> None:
    """The vendor replaces its own metadata (RFC 7592 section 2.2)."""
    r = vendor.client.put(
        registration["registration_client_uri"].removeprefix(ISSUER),
        headers=bearer(registration["registration_access_token"]),
        json={"client_id": vendor.client_id} | metadata,
    )
    assert r.status_code == 200, r.text
    assert r.json()["client_name"] == metadata["client_name"]


def _consented(vendor: Vendor, grant: dict[str, Any], *, at_consent: bool = True) -> dict[str, Any]:
    return {
        "id": vendor.client_id,
        "name": "Livraria Lello",
        "logo_uri": "https://lello.example/logo.png",
        "policy_uri": "https://lello.example/privacy",
        "contacts": ["dpo@lello.example"],
        "recorded_at": grant["created_at"],
        "recorded_at_consent": at_consent,
    }


def _receipt(person: Person, vendor: Vendor, grant_id: str) -> dict[str, Any]:
    r = person.client.get(f"{GRANTS}/{grant_id}/receipt")
    assert r.status_code == 200, r.text
    keys = KeySet.import_key_set(vendor.client.get("/oauth/jwks").json())
    obj = jws.deserialize_compact(r.text, keys, algorithms=["ES256"])
    assert obj.protected["typ"] == "consent-receipt+jwt"
    record: dict[str, Any] = json.loads(obj.payload)
    return record


def _grant(person: Person, grant_id: str) -> dict[str, Any]:
    r = person.client.get(f"{GRANTS}/{grant_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_vendor_renaming_itself_does_not_rewrite_the_grant_view(
    app: FastAPI, ana: Person
) -> None:
    vendor, registration = _register(app)
    grant_id = tokens_for(ana, vendor, "profile.email:read")["grant_id"]

    _vendor_updates(vendor, registration, **RENAMED)

    grant = _grant(ana, grant_id)
    assert grant["vendor"] == _consented(vendor, grant)
    assert grant["vendor_changed"] == ["name", "policy_uri"]
    assert grant["vendor_now"] == {
        "id": vendor.client_id,
        "name": "Lello Data Brokers",
        "logo_uri": "https://lello.example/logo.png",
        "policy_uri": "https://lello.example/privacy-v2",
        "contacts": ["dpo@lello.example"],
    }
    # The record itself: the first change entry holds the copy.
    granted = grant["changes"][0]
    assert granted["kind"] == "granted"
    assert granted["detail"]["vendor"] == grant["vendor"]
    # The list and the export say the same.
    [listed] = ana.client.get(GRANTS).json()["items"]
    assert listed == grant
    [exported] = ana.client.get("/api/v1/me/export").json()["grants"]
    assert exported == grant


def test_a_receipt_signed_after_a_rename_names_the_vendor_as_consented(
    app: FastAPI, ana: Person
) -> None:
    vendor, registration = _register(app)
    grant_id = tokens_for(ana, vendor, "profile.email:read")["grant_id"]

    _vendor_updates(vendor, registration, **RENAMED | {"contacts": ["legal@lello.example"]})

    record = _receipt(ana, vendor, grant_id)
    grant = _grant(ana, grant_id)
    assert record["data_controller"] == {
        "id": vendor.client_id,
        "name": "Livraria Lello",
        "privacy_notice": "https://lello.example/privacy",
        "logo": "https://lello.example/logo.png",
        "contacts": ["dpo@lello.example"],
        "recorded_at": grant["created_at"].replace("+00:00", "Z"),
        "recorded_at_consent": True,
    }
    assert record["data_controller_changed"] == ["contacts", "name", "privacy_notice"]
    assert record["data_controller_now"] == {
        "id": vendor.client_id,
        "name": "Lello Data Brokers",
        "privacy_notice": "https://lello.example/privacy-v2",
        "logo": "https://lello.example/logo.png",
        "contacts": ["legal@lello.example"],
    }
    assert record["history"][0]["detail"]["vendor"] == grant["vendor"]


def test_an_unchanged_vendor_is_not_flagged(app: FastAPI, ana: Person) -> None:
    vendor, registration = _register(app)
    grant_id = tokens_for(ana, vendor, "profile.email:read")["grant_id"]
    # An update that changes nothing the customer was shown.
    _vendor_updates(
        vendor, registration, **AS_CONSENTED | {"redirect_uris": ["https://lello.example/cb"]}
    )

    grant = _grant(ana, grant_id)
    assert grant["vendor"] == _consented(vendor, grant)
    assert (grant["vendor_changed"], grant["vendor_now"]) == ([], None)
    record = _receipt(ana, vendor, grant_id)
    assert record["data_controller"]["name"] == "Livraria Lello"
    assert (record["data_controller_changed"], record["data_controller_now"]) == ([], None)


def test_after_a_rename_the_customer_is_asked_again_and_the_new_grant_keeps_the_new_name(
    app: FastAPI, ana: Person
) -> None:
    vendor, registration = _register(app)
    first = tokens_for(ana, vendor, "profile.email:read")["grant_id"]
    # Before the rename, the same request is covered: no page.
    assert start(ana, vendor, "profile.email:read").page.status_code == 303

    _vendor_updates(vendor, registration, **RENAMED)

    # The covering grant was given to another name: the customer sees the
    # page, with the new name, instead of a silent reuse.
    auth = start(ana, vendor, "profile.email:read")
    assert auth.page.status_code == 200, auth.page.text
    assert "Lello Data Brokers asks to use some of your data" in auth.page.text
    decide(ana, auth)
    r = vendor.exchange(auth.code, auth.verifier)
    assert r.status_code == 200, r.text
    second = r.json()["grant_id"]
    assert second != first

    renewed = _grant(ana, second)
    assert renewed["vendor"] == _consented(vendor, renewed) | {
        "name": "Lello Data Brokers",
        "policy_uri": "https://lello.example/privacy-v2",
    }
    assert (renewed["vendor_changed"], renewed["vendor_now"]) == ([], None)
    assert _grant(ana, first)["vendor"]["name"] == "Livraria Lello"
    # And the new grant covers the next request again.
    assert start(ana, vendor, "profile.email:read").page.status_code == 303


# Server custody: the upgrade goes down to before 0019, which only
# customers whose root keys the server holds can.
@pytest.mark.parametrize("custody_of_keys", ["server"])
def test_grants_from_before_the_copy_get_the_vendor_as_of_the_upgrade(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    """Migration 0011: the vendor a customer saw before the copy existed is
    unknowable, so the grant gets the vendor as it is at the upgrade, marked
    as recorded then and not at consent."""
    vendor, registration = _register(app)
    grant_id = tokens_for(ana, vendor, "profile.email:read")["grant_id"]
    _vendor_updates(vendor, registration, **RENAMED)
    config = alembic_config(settings)
    app.state.engine.dispose()
    command.downgrade(config, "0008")
    with app.state.engine.begin() as conn:
        # The downgrade keeps copies made at consent; strip this one, as a
        # grant given before 0011 never had it.
        detail = _granted_detail(conn, grant_id)
        del detail["vendor"]
        conn.execute(
            text(
                "UPDATE grant_change SET detail = :d WHERE grant_id = :g AND kind = 'granted'"
            ).bindparams(bindparam("d", type_=JSON)),
            {"d": detail, "g": grant_id},
        )
    before = utcnow()
    app.state.engine.dispose()
    command.upgrade(config, "head")

    grant = _grant(ana, grant_id)
    copied = grant["vendor"]
    assert before <= datetime.fromisoformat(copied["recorded_at"]) <= utcnow()
    assert copied == {
        "id": vendor.client_id,
        "name": "Lello Data Brokers",
        "logo_uri": "https://lello.example/logo.png",
        "policy_uri": "https://lello.example/privacy-v2",
        "contacts": ["dpo@lello.example"],
        "recorded_at": copied["recorded_at"],
        "recorded_at_consent": False,
    }
    assert (grant["vendor_changed"], grant["vendor_now"]) == ([], None)
    # Down again: the migration's copies go, so an older server reads the
    # record it wrote.
    app.state.engine.dispose()
    command.downgrade(config, "0008")
    with app.state.engine.connect() as conn:
        assert "vendor" not in _granted_detail(conn, grant_id)
    app.state.engine.dispose()
    command.upgrade(config, "head")


def _granted_detail(conn: Connection, grant_id: str) -> dict[str, Any]:
    statement = text(
        "SELECT detail FROM grant_change WHERE grant_id = :g AND kind = 'granted'"
    ).columns(column("detail", JSON))
    detail: dict[str, Any] = conn.execute(statement, {"g": grant_id}).scalar_one()
    return detail
