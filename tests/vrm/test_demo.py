"""The demo customer (``vrm demo``), loaded into the test app and used over HTTP.

These tests sign up ana@example.org through load_demo, so they never use the
``ana`` fixture, which signs up the same email.
"""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from tests.kit import log_in, vrm
from vrm.accounts.models import Customer
from vrm.demo import load_demo
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.records.models import DocumentRecord
from vrm.settings import Settings


def load(app: FastAPI) -> str | None:
    with Session(app.state.engine) as session:
        made = load_demo(
            session=session,
            vault=app.state.vault,
            passwords=app.state.passwords,
            settings=app.state.settings,
        )
    return None if made is None else made.password


def row_counts(app: FastAPI) -> dict[str, int]:
    tables: list[type[SQLModel]] = [Customer, DataKey, DocumentRecord, HistoryRecord]
    with Session(app.state.engine) as session:
        return {t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in tables}


@pytest.fixture
def demo(app: FastAPI, client: TestClient) -> TestClient:
    """The anonymous client, logged in as the freshly loaded demo customer."""
    password = load(app)
    assert password is not None
    r = client.post("/api/v1/session", json={"email": "ana@example.org", "password": password})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ana@example.org"
    return client


def test_demo_profile_is_there(demo: TestClient) -> None:
    r = demo.get("/api/v1/me/profile")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "given_name": "Ana",
        "family_name": "Lima",
        "email": "ana@example.org",
        "phone": "+351 21 000 0000",
        "postal_address": {
            "street_address": "Rua das Flores 12",
            "locality": "Lisboa",
            "region": None,
            "postal_code": "1200-195",
            "country": "PT",
        },
        "birth_date": None,
        "language": "pt-PT",
    }


def test_demo_preferences_are_there(demo: TestClient) -> None:
    r = demo.get("/api/v1/me/preferences")
    assert r.status_code == 200, r.text
    assert r.json()["communication"] == {
        "channels": ["email"],
        "frequency": "monthly",
        "quiet_hours": None,
        "language": "en",
    }
    assert r.json()["dietary"] == ["vegetarian"]


def test_demo_history_has_the_book_bought_as_a_gift(demo: TestClient) -> None:
    r = demo.get("/api/v1/me/history", params={"label": "gift"})
    assert r.status_code == 200, r.text
    [book] = r.json()["items"]
    assert book["vendor"] == "Livraria Bertrand"
    assert book["labels"] == ["gift"]
    assert book["items"] == [
        {
            "name": "The Very Hungry Caterpillar",
            "sku": None,
            "quantity": 1,
            "amount": "9.90",
            "labels": ["gift"],
        }
    ]


def test_demo_history_has_the_private_pharmacy_visit(demo: TestClient) -> None:
    r = demo.get("/api/v1/me/history", params={"label": "private"})
    assert r.status_code == 200, r.text
    [visit] = r.json()["items"]
    assert visit["vendor"] == "Farmácia Central"
    assert visit["labels"] == ["private"]
    assert visit["amount"] == "23.40"


def test_demo_history_lists_all_five_events_newest_first(demo: TestClient) -> None:
    r = demo.get("/api/v1/me/history")
    assert r.status_code == 200, r.text
    assert [(e["vendor"], e["type"]) for e in r.json()["items"]] == [
        ("Farmácia Central", "purchase"),
        ("Mountain Gear Co.", "support_case"),
        ("Mountain Gear Co.", "purchase"),
        ("Livraria Bertrand", "purchase"),
        ("Livraria Bertrand", "purchase"),
    ]


def test_loading_the_demo_again_returns_none_and_creates_nothing(
    app: FastAPI, demo: TestClient
) -> None:
    before = row_counts(app)
    assert before["Customer"] == 1
    assert load(app) is None
    assert row_counts(app) == before
    r = demo.get("/api/v1/me/history")
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 5


def test_vrm_demo_prints_a_password_and_a_recovery_key_that_open_the_account(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    """What README's "Try it" and `make run` promise: both printed once,
    and both work."""
    done = vrm(settings, "demo", columns=200)
    assert (done.returncode, done.stderr) == (0, "")
    created, password_line, recovery_line = done.stdout.splitlines()
    assert created == "demo customer created: ana@example.org"
    password = re.fullmatch(r"password \(shown only now\): (\S+)", password_line)
    recovery = re.fullmatch(
        r"recovery key \(shown only now\): ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})", recovery_line
    )
    assert password is not None, password_line
    assert recovery is not None, recovery_line
    r = log_in(client, "ana@example.org", password[1])
    assert r.status_code == 200, r.text
    assert r.json()["recovery_key"] is None
    r = client.post(
        "/api/v1/recovery",
        json={
            "email": "ana@example.org",
            "recovery_key": recovery[1],
            "new_password": "a completely new passphrase",
        },
    )
    assert r.status_code == 200, r.text
    assert log_in(client, "ana@example.org", "a completely new passphrase").status_code == 200
    assert client.get("/api/v1/me/history").json()["items"][0]["vendor"] == "Farmácia Central"
    again = vrm(settings, "demo")
    assert (again.returncode, again.stdout) == (
        0,
        "demo customer ana@example.org already exists (its password was shown once)\n",
    )
