"""Nothing a customer writes reaches the database in the clear.

Every value carries a fresh marker; the test searches the raw SQLite files
(main file, WAL and shared memory) or a pg_dump of the PostgreSQL database
for it, in any ASCII case and as hex (how pg_dump prints bytea). The same
search run over the customer's plaintext export finds every marker, so a
search that finds nothing is not a broken search.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import date

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from tests.conftest import Person, sign_up_and_log_in
from tests.kit import bearer, exported
from tests.pgserver import pg_dump
from vrm.accounts.models import LoginThrottle
from vrm.settings import Settings

ME = "/api/v1/me"


def _hex() -> str:
    return uuid.uuid4().hex


def _digits(n: int) -> str:
    return str(10 ** (n - 1) + secrets.randbelow(9 * 10 ** (n - 1)))


def _forms(value: str) -> list[bytes]:
    """The value in the forms a leak could take: as written and in other
    ASCII cases, and as the lowercase hex pg_dump writes for bytea."""
    texts = {value, value.lower(), value.upper(), value.casefold(), value.swapcase()}
    return sorted({t.encode() for t in texts} | {t.encode().hex().encode() for t in texts})


def _found(haystack: bytes, value: str) -> bool:
    folded = haystack.lower()
    return any(form.lower() in folded for form in _forms(value))


def _stored_bytes(settings: Settings) -> bytes:
    if settings.is_sqlite:
        db = settings.data_dir / "vrm.db"
        files = [db, db.with_name("vrm.db-wal"), db.with_name("vrm.db-shm")]
        return b"".join(f.read_bytes() for f in files if f.exists())
    return pg_dump(settings.database_url)


@pytest.fixture
def login_email() -> str:
    # Mixed case on purpose: the address must not be stored in any case form.
    h = _hex()
    return f"Carla.{h[:16].upper()}{h[16:]}@Example.ORG"


@pytest.fixture
def carla(app: FastAPI, login_email: str) -> Person:
    return sign_up_and_log_in(app, login_email)


@pytest.fixture
def markers(carla: Person) -> dict[str, str]:
    """Write a marker into every field that can hold one; returns them by
    field. Closed vocabularies (country, currency, channels, frequency,
    labels, event type) cannot hold a marker and are left out."""
    m = {
        "profile.given_name": f"given{_hex()}",
        "profile.family_name": f"family{_hex()}",
        "profile.email": f"contact{_hex()}@example.net",
        "profile.phone": f"+{_digits(15)}",
        "profile.postal_address.street_address": f"street{_hex()}",
        "profile.postal_address.locality": f"locality{_hex()}",
        "profile.postal_address.region": f"region{_hex()}",
        "profile.postal_address.postal_code": _hex()[:16],
        "profile.birth_date": date(1901 + secrets.randbelow(40), 7, 29).isoformat(),
        "profile.language": f"pt-{_hex()[:8]}-{_hex()[:8]}",
        "preferences.communication.language": f"en-{_hex()[:8]}-{_hex()[:8]}",
        "preferences.communication.quiet_hours.start": f"03:17:29.{_digits(6)}",
        "preferences.shopping.sizes.key": f"size{_hex()}",
        "preferences.shopping.sizes.value": f"fit{_hex()}",
        "preferences.shopping.brands": f"brand{_hex()}",
        "preferences.shopping.interests": f"interest{_hex()}",
        "preferences.shopping.budget.amount": f"{_digits(9)}.{_digits(2)}",
        "preferences.dietary": f"diet{_hex()}",
        "preferences.accessibility": f"access{_hex()}",
        "preferences.free.key": f"k{_hex()}",
        "preferences.free.value": f"free{_hex()}",
        "preferences.free.number_value": _digits(12),
        "history.vendor": f"vendor{_hex()}",
        "history.notes": f"notes{_hex()}",
        "history.amount": f"{_digits(11)}.{_digits(2)}",
        "history.items.name": f"item{_hex()}",
        "history.items.sku": f"sku{_hex()}",
    }
    r = carla.client.put(
        f"{ME}/profile",
        json={
            "given_name": m["profile.given_name"],
            "family_name": m["profile.family_name"],
            "email": m["profile.email"],
            "phone": m["profile.phone"],
            "postal_address": {
                "street_address": m["profile.postal_address.street_address"],
                "locality": m["profile.postal_address.locality"],
                "region": m["profile.postal_address.region"],
                "postal_code": m["profile.postal_address.postal_code"],
                "country": "PT",
            },
            "birth_date": m["profile.birth_date"],
            "language": m["profile.language"],
        },
    )
    assert r.status_code == 200, r.text
    r = carla.client.put(
        f"{ME}/preferences",
        json={
            "communication": {
                "channels": ["email"],
                "frequency": "monthly",
                "quiet_hours": {
                    "start": m["preferences.communication.quiet_hours.start"],
                    "end": "07:00:00",
                },
                "language": m["preferences.communication.language"],
            },
            "shopping": {
                "sizes": {
                    m["preferences.shopping.sizes.key"]: m["preferences.shopping.sizes.value"]
                },
                "brands": [m["preferences.shopping.brands"]],
                "interests": [m["preferences.shopping.interests"]],
                "budget": {"amount": m["preferences.shopping.budget.amount"], "currency": "EUR"},
            },
            "dietary": [m["preferences.dietary"]],
            "accessibility": [m["preferences.accessibility"]],
            "free": {
                m["preferences.free.key"]: m["preferences.free.value"],
                "lucky_number": int(m["preferences.free.number_value"]),
            },
        },
    )
    assert r.status_code == 200, r.text
    r = carla.client.post(
        f"{ME}/history",
        json={
            "vendor": m["history.vendor"],
            "type": "purchase",
            "occurred_at": "2024-05-01T10:00:00Z",
            "items": [{"name": m["history.items.name"], "sku": m["history.items.sku"]}],
            "amount": m["history.amount"],
            "currency": "EUR",
            "notes": m["history.notes"],
        },
    )
    assert r.status_code == 201, r.text
    return m


def test_no_field_value_reaches_the_database_in_the_clear(
    settings: Settings, carla: Person, markers: dict[str, str]
) -> None:
    stored = _stored_bytes(settings)
    # We are looking at the right database, newest writes included.
    assert carla.id.encode() in stored

    assert [field for field, value in markers.items() if _found(stored, value)] == []

    # The same search finds every marker where it is meant to be.
    export = exported(carla.client).content
    assert [field for field, value in markers.items() if not _found(export, value)] == []


def test_login_email_reaches_the_database_in_no_case_form(
    app: FastAPI, settings: Settings, carla: Person, login_email: str
) -> None:
    # A failed log-in counts against the address; the counter must not
    # store it either.
    r = carla.client.post("/api/v1/session", json={"email": login_email, "password": "wrong"})
    assert r.status_code == 401, r.text
    local_part = login_email.split("@")[0]
    stored = _stored_bytes(settings)
    assert carla.id.encode() in stored

    assert not _found(stored, login_email)
    assert not _found(stored, local_part)

    export = exported(carla.client).content
    assert _found(export, login_email)
    assert _found(export, local_part)


def test_unknown_email_tried_at_log_in_is_counted_but_not_stored(
    app: FastAPI, client: TestClient, settings: Settings, carla: Person
) -> None:
    stranger = f"Dora.{_hex()}@Example.NET"
    r = client.post("/api/v1/session", json={"email": stranger, "password": "a guess"})
    assert r.status_code == 401, r.text
    stored = _stored_bytes(settings)
    assert carla.id.encode() in stored

    assert not _found(stored, stranger)
    # The attempt was recorded, under a 32-byte blind index of the address
    # and one of the account at it behind a 16-byte prefix of the account.
    with Session(app.state.engine) as session:
        keys = session.exec(select(LoginThrottle.key)).all()
    assert sorted(len(k) for k in keys) == [32, 48]
    assert _found(r.request.content, stranger)


def test_sharing_with_a_vendor_writes_no_value_to_the_database(
    app: FastAPI, settings: Settings, carla: Person, markers: dict[str, str]
) -> None:
    # Consent, tokens, the vendor's reads (and their access events), userinfo
    # and a receipt all write or sign something; none may store a value.
    from tests.consent.conftest import register_vendor, tokens_for

    vendor = register_vendor(app)
    token = tokens_for(carla, vendor, "openid profile:read preferences:read history:read")
    as_vendor = bearer(token["access_token"])
    read = vendor.client.get("/v1/data", headers=as_vendor)
    assert read.status_code == 200, read.text
    assert vendor.client.get("/oauth/userinfo", headers=as_vendor).status_code == 200
    receipt = carla.client.get(f"{ME}/grants/{token['grant_id']}/receipt")
    assert receipt.status_code == 200, receipt.text

    stored = _stored_bytes(settings)
    assert token["grant_id"].encode() in stored
    assert [field for field, value in markers.items() if _found(stored, value)] == []
    # The vendor did receive them: the search would have found a leak.
    assert _found(read.content, markers["profile.given_name"])
    assert _found(read.content, markers["history.notes"])
