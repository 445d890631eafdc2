"""The customer's own export (GET /api/v1/me/export) over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from joserfc import jws

from tests.conftest import Person
from tests.kit import assert_problem
from vrm.settings import Settings

EXPORT = "/api/v1/me/export"

PROFILE: dict[str, Any] = {
    "given_name": "Ana",
    "family_name": "Lima",
    "email": "ana.lima@example.org",
    "phone": None,
    "postal_address": {
        "street_address": None,
        "locality": "Lisboa",
        "region": None,
        "postal_code": None,
        "country": "PT",
    },
    "birth_date": "1990-04-01",
    "language": "pt-PT",
}
PREFERENCES: dict[str, Any] = {
    "communication": {
        "channels": ["email"],
        "frequency": "monthly",
        "quiet_hours": None,
        "language": "en",
    },
    "shopping": None,
    "dietary": ["vegetarian"],
    "accessibility": [],
    "free": {"likes_surprises": False},
}
GIFT: dict[str, Any] = {
    "vendor": "Livraria Bertrand",
    "type": "purchase",
    "occurred_at": "2026-03-14T16:05:00+01:00",
    "items": [
        {"name": "The Very Hungry Caterpillar", "sku": None, "quantity": 1, "amount": "9.90",
         "labels": ["gift"]},
    ],
    "amount": "9.90",
    "currency": "EUR",
    "channel": "store",
    "rating": None,
    "notes": "Birthday present for my nephew.",
    "labels": ["gift"],
}  # fmt: skip
PHARMACY: dict[str, Any] = {
    "vendor": "Farmácia Central",
    "type": "purchase",
    "occurred_at": "2026-08-09T18:20:00Z",
    "items": [],
    "amount": "23.40",
    "currency": "EUR",
    "channel": "store",
    "rating": None,
    "notes": None,
    "labels": ["private"],
}


def store_everything(client: TestClient) -> list[dict[str, Any]]:
    """Profile, preferences and two events; returns the events, newest first."""
    for path, body in (("profile", PROFILE), ("preferences", PREFERENCES)):
        r = client.put(f"/api/v1/me/{path}", json=body)
        assert r.status_code == 200, r.text
    events = []
    for body in (GIFT, PHARMACY):
        r = client.post("/api/v1/me/history", json=body)
        assert r.status_code == 201, r.text
        events.append(r.json())
    return events[::-1]


def export(client: TestClient) -> dict[str, Any]:
    r = client.get(EXPORT)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without what is new each time an export is made: its time,
    the receipts' signatures and signing times (an ES256 signature is
    randomised), and the audit log's entries of the exports themselves.
    Each receipt's record is kept."""
    body = {k: v for k, v in body.items() if k != "exported_at"}
    body["audit_log"] = [e for e in body["audit_log"] if e["entry"]["type"] != "account.exported"]
    records = []
    for receipt in body["receipts"]:
        record = json.loads(jws.extract_compact(receipt["jws"].encode()).payload)
        del record["issued_at"]
        records.append({**receipt, "jws": record})
    body["receipts"] = records
    return body


def recent(value: str) -> bool:
    when = datetime.fromisoformat(value)
    return when.tzinfo is not None and abs(datetime.now(UTC) - when) < timedelta(minutes=5)


def test_export_holds_exactly_what_the_customer_stored(ana: Person) -> None:
    events = store_everything(ana.client)
    body = export(ana.client)
    account = body["account"]
    [session] = body["sessions"]
    assert body == {
        "schema": "urn:vrm:export",
        "schema_version": 3,
        "exported_at": body["exported_at"],
        "account": {
            "id": ana.id,
            "email": "ana@example.org",
            "created_at": account["created_at"],
            "password_changed_at": account["password_changed_at"],
        },
        "profile": PROFILE,
        "preferences": PREFERENCES,
        "history": events,
        "sessions": [
            {
                "id": session["id"],
                "device": "Unknown device",  # the test client's User-Agent
                "created_at": session["created_at"],
                "last_used_at": session["created_at"],
                "expires_at": session["expires_at"],
            }
        ],
        # No vendor was ever granted anything (tests/vrm/test_export_sections.py).
        "grants": [],
        "receipts": [],
        "pairwise_ids": [],
        "access_log": [],
        "deposits": [],
        # The audit log's one entry about ana: this export (tests/audit).
        "audit_log": [{"index": 0, "entry": body["audit_log"][0]["entry"]}],
    }
    assert body["audit_log"][0]["entry"]["type"] == "account.exported"
    assert recent(body["exported_at"])
    assert recent(account["created_at"])
    # The login of the ana fixture, for the configured lifetime.
    assert recent(session["created_at"])
    lifetime = datetime.fromisoformat(session["expires_at"]) - datetime.fromisoformat(
        session["created_at"]
    )
    assert lifetime == timedelta(seconds=Settings().session_ttl_seconds)


def test_export_includes_private_events(ana: Person) -> None:
    store_everything(ana.client)
    private = [e for e in export(ana.client)["history"] if "private" in e["labels"]]
    assert [e["vendor"] for e in private] == ["Farmácia Central"]


def test_export_reflects_later_changes(ana: Person) -> None:
    events = store_everything(ana.client)
    r = ana.client.patch("/api/v1/me/profile", json={"given_name": "Ana Maria"})
    assert r.status_code == 200, r.text
    r = ana.client.delete(f"/api/v1/me/history/{events[0]['id']}")
    assert r.status_code == 204, r.text
    body = export(ana.client)
    assert body["profile"] == {**PROFILE, "given_name": "Ana Maria"}
    assert body["history"] == events[1:]


def test_export_of_a_new_account_has_empty_sections(ana: Person) -> None:
    body = export(ana.client)
    assert body["profile"] == dict.fromkeys(PROFILE)
    assert body["preferences"] == {
        "communication": None,
        "shopping": None,
        "dietary": [],
        "accessibility": [],
        "free": {},
    }
    assert body["history"] == []


def test_export_is_a_download_that_is_never_cached(ana: Person) -> None:
    r = ana.client.get(EXPORT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-disposition"] == 'attachment; filename="vrm-export.json"'
    assert r.headers["cache-control"] == "no-store"


def test_export_holds_only_the_customers_own_data(ana: Person, bob: Person) -> None:
    store_everything(ana.client)
    body = export(bob.client)
    assert body["account"]["id"] == bob.id
    assert body["account"]["email"] == "bob@example.org"
    assert body["history"] == []
    assert "Lima" not in str(body)


def test_export_needs_a_session(client: TestClient) -> None:
    r = client.get(EXPORT)
    assert_problem(r, 401, "unauthenticated", detail="Log in first (POST /api/v1/session).")
    assert "content-disposition" not in r.headers
