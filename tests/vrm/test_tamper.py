"""Altered or misplaced ciphertext is refused, never read as wrong data.

Each test changes stored bytes behind the app's back, through its own engine,
as someone with write access to the database would, then reads over HTTP:
the answer is a 500 ``urn:vrm:problem:integrity`` whose detail names the
category and carries no plaintext.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, select

from tests.conftest import Person
from tests.kit import assert_problem
from vrm.accounts.models import Customer
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.records import sealing
from vrm.records.models import DocumentRecord
from vrm.settings import Settings

ME = "/api/v1/me"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No data key cache: every read unwraps, as a freshly started server does.
    return settings.model_copy(update={"key_cache_seconds": 0.0})


def _flip(blob: bytes, at: int) -> bytes:
    at %= len(blob)
    return blob[:at] + bytes([blob[at] ^ 0x01]) + blob[at + 1 :]


def _assert_integrity_failure(person: Person, path: str, detail: str, secrets: list[str]) -> None:
    r = person.client.get(path)
    assert_problem(r, 500, "integrity", detail=detail, instance=path)
    assert [s for s in secrets if s in r.text] == []


@pytest.fixture
def ana_secrets(ana: Person) -> list[str]:
    given, diet = f"given{uuid.uuid4().hex}", f"diet{uuid.uuid4().hex}"
    r = ana.client.put(f"{ME}/profile", json={"given_name": given})
    assert r.status_code == 200, r.text
    r = ana.client.put(f"{ME}/preferences", json={"dietary": [diet]})
    assert r.status_code == 200, r.text
    return [given, diet, ana.email]


@pytest.fixture
def ana_events(ana: Person) -> list[dict[str, Any]]:
    events = []
    for n in (1, 2):
        r = ana.client.post(
            f"{ME}/history",
            json={
                "vendor": f"vendor{uuid.uuid4().hex}",
                "type": "purchase",
                "occurred_at": f"2024-0{n}-01T10:00:00Z",
                "notes": f"notes{uuid.uuid4().hex}",
            },
        )
        assert r.status_code == 201, r.text
        events.append(r.json())
    return events


def _event_secrets(event: dict[str, Any]) -> list[str]:
    return [event["vendor"], event["notes"]]


def _change_document(app: FastAPI, customer_id: str, category: str, ciphertext: bytes) -> bytes:
    with Session(app.state.engine) as session:
        row = session.get(DocumentRecord, (customer_id, category))
        assert row is not None
        old = row.ciphertext
        row.ciphertext = ciphertext
        session.add(row)
        session.commit()
    return old


def _document_ciphertext(app: FastAPI, customer_id: str, category: str) -> bytes:
    with Session(app.state.engine) as session:
        row = session.get(DocumentRecord, (customer_id, category))
        assert row is not None
        return row.ciphertext


def _history_row(session: Session, event_id: str) -> HistoryRecord:
    return session.exec(select(HistoryRecord).where(col(HistoryRecord.id) == event_id)).one()


# Format byte, a nonce byte, a ciphertext byte, the last byte of the tag.
POSITIONS = pytest.mark.parametrize("at", [0, 5, 20, -1], ids=["format", "nonce", "body", "tag"])


@POSITIONS
@pytest.mark.parametrize("category", ["profile", "preferences"])
def test_document_with_a_flipped_byte_is_refused_as_an_integrity_failure(
    app: FastAPI, ana: Person, ana_secrets: list[str], category: str, at: int
) -> None:
    # The customer reads the whole copy, packed first (vrm/records/sealing.py);
    # a flipped field is for its readers: tests/vrm/test_field_keys.py.
    stored = _document_ciphertext(app, ana.id, category)
    whole = sealing.whole_of(stored)
    assert whole is not None
    begins = stored.index(whole)
    flipped = _flip(whole, at)
    _change_document(
        app, ana.id, category, stored[:begins] + flipped + stored[begins + len(whole) :]
    )

    detail = f"a stored {category} record failed its integrity check"
    _assert_integrity_failure(ana, f"{ME}/{category}", detail, ana_secrets)
    _assert_integrity_failure(ana, f"{ME}/export", detail, ana_secrets)


@POSITIONS
def test_history_event_with_a_flipped_byte_is_refused_as_an_integrity_failure(
    app: FastAPI, ana: Person, ana_events: list[dict[str, Any]], at: int
) -> None:
    event = ana_events[0]
    with Session(app.state.engine) as session:
        row = _history_row(session, event["id"])
        row.ciphertext = _flip(row.ciphertext, at)
        session.add(row)
        session.commit()

    detail = "a stored history record failed its integrity check"
    secrets = _event_secrets(event)
    _assert_integrity_failure(ana, f"{ME}/history/{event['id']}", detail, secrets)
    _assert_integrity_failure(ana, f"{ME}/history", detail, secrets)
    _assert_integrity_failure(ana, f"{ME}/export", detail, secrets)


def test_login_email_with_a_flipped_byte_is_refused_as_an_integrity_failure(
    app: FastAPI, ana: Person
) -> None:
    with Session(app.state.engine) as session:
        customer = session.get(Customer, ana.id)
        assert customer is not None
        customer.email_ct = _flip(customer.email_ct, 20)
        session.add(customer)
        session.commit()

    detail = "a stored account record failed its integrity check"
    _assert_integrity_failure(ana, ME, detail, [ana.email])
    _assert_integrity_failure(ana, f"{ME}/export", detail, [ana.email])


def test_history_ciphertext_moved_to_another_event_of_the_same_customer_is_refused(
    app: FastAPI, ana: Person, ana_events: list[dict[str, Any]]
) -> None:
    source, target = ana_events
    with Session(app.state.engine) as session:
        ciphertext = _history_row(session, source["id"]).ciphertext
        row = _history_row(session, target["id"])
        row.ciphertext = ciphertext
        session.add(row)
        session.commit()

    detail = "a stored history record failed its integrity check"
    _assert_integrity_failure(ana, f"{ME}/history/{target['id']}", detail, _event_secrets(source))
    # The event whose ciphertext was copied still reads as itself.
    r = ana.client.get(f"{ME}/history/{source['id']}")
    assert r.status_code == 200, r.text
    assert r.json() == source


def test_profile_ciphertext_moved_to_another_customers_profile_is_refused(
    app: FastAPI, ana: Person, bob: Person, ana_secrets: list[str]
) -> None:
    _change_document(app, bob.id, "profile", _document_ciphertext(app, ana.id, "profile"))

    detail = "a stored profile record failed its integrity check"
    _assert_integrity_failure(bob, f"{ME}/profile", detail, ana_secrets)
    r = ana.client.get(f"{ME}/profile")
    assert r.status_code == 200, r.text
    assert r.json()["given_name"] == ana_secrets[0]


def test_profile_ciphertext_moved_to_the_same_customers_preferences_is_refused(
    app: FastAPI, ana: Person, ana_secrets: list[str]
) -> None:
    _change_document(app, ana.id, "preferences", _document_ciphertext(app, ana.id, "profile"))

    detail = "a stored preferences record failed its integrity check"
    _assert_integrity_failure(ana, f"{ME}/preferences", detail, ana_secrets)
    r = ana.client.get(f"{ME}/profile")
    assert r.status_code == 200, r.text


def test_wrapped_data_key_with_a_flipped_byte_is_refused_as_an_integrity_failure(
    app: FastAPI, ana: Person, ana_secrets: list[str]
) -> None:
    with Session(app.state.engine) as session:
        # The profile's key, from which each of its fields' derives.
        key = session.get(DataKey, (ana.id, "profile", 1))
        assert key is not None
        key.wrapped = _flip(key.wrapped, 20)
        session.add(key)
        session.commit()

    detail = "a wrapped data key failed its integrity check"
    _assert_integrity_failure(ana, f"{ME}/profile", detail, ana_secrets)
    # Other categories have their own data keys and still open.
    r = ana.client.get(f"{ME}/preferences")
    assert r.status_code == 200, r.text


def test_wrapped_data_key_moved_to_another_customer_is_refused(
    app: FastAPI, ana: Person, bob: Person, ana_secrets: list[str]
) -> None:
    with Session(app.state.engine) as session:
        anas = session.get(DataKey, (ana.id, "profile", 1))
        bobs = session.get(DataKey, (bob.id, "profile", 1))
        assert anas is not None
        assert bobs is not None
        bobs.wrapped, bobs.root_version = anas.wrapped, anas.root_version
        session.add(bobs)
        session.commit()

    detail = "a wrapped data key failed its integrity check"
    _assert_integrity_failure(bob, f"{ME}/profile", detail, ana_secrets)
