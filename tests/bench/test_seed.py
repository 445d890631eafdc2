"""Seeded customers are real: the product opens them (bench/lib/seed.py).

The seeder writes rows in bulk instead of calling the services; these
tests read what it wrote through the app, as a vendor and as the
customer, on both backends (COPY on PostgreSQL, Core inserts on SQLite).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.lib import seed, seed_rows
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer, log_in
from tests.vendor_api.helpers import feed_token, read_feed
from vrm.settings import Settings

CUSTOMERS = 200
EVENTS = 3


@pytest.fixture
def seeded(app: FastAPI, settings: Settings, vendor: Vendor, other_vendor: Vendor) -> int:
    # Every customer grants `vendor`; a tenth grant `other_vendor` too
    # (customers 0-99 of each thousand: seed_rows.grants_of).
    shares = [(vendor.client_id, 1.0), (other_vendor.client_id, 0.1)]
    return seed.seed_customers(settings, shares, 0, CUSTOMERS, EVENTS)


def _number(item: dict[str, Any]) -> int:
    email: str = item["data"]["profile"]["email"]
    return int(email.removeprefix("contact").removesuffix("@bench.example"))


def test_a_vendor_reads_every_seeded_customer_through_the_feed(
    seeded: int, vendor: Vendor, other_vendor: Vendor
) -> None:
    items, _ = read_feed(vendor, feed_token(vendor), limit=1000)
    assert {item["type"] for item in items} == {"snapshot"}
    assert sorted(_number(item) for item in items) == list(range(CUSTOMERS))
    first = next(item for item in items if _number(item) == 7)
    assert first["data"]["profile"] == {"email": "contact7@bench.example"}
    assert first["data"]["preferences"] == {
        "communication": None,
        "shopping": None,
        "dietary": ["vegetarian"],
        "accessibility": ["large print"],
        "free": {"team": "t7"},
    }
    # Events labelled private are never shared (the catalogue's rule).
    assert all(len(item["data"]["history"]) <= EVENTS for item in items)
    assert sum(len(item["data"]["history"]) for item in items) > CUSTOMERS * EVENTS * 0.7
    others, _ = read_feed(other_vendor, feed_token(other_vendor), limit=1000)
    assert sorted(_number(item) for item in others) == list(range(100))


def test_a_seeded_customer_logs_in_and_reads_their_own_data(seeded: int, app: FastAPI) -> None:
    with TestClient(app) as client:
        r = log_in(client, "c42@bench.example", seed.PASSWORD)
        assert r.status_code == 200, r.text
        r = client.get("/api/v1/me/profile")
        assert r.status_code == 200, r.text
        assert r.json()["given_name"] == "Given42"
        r = client.get("/api/v1/me/history")
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == EVENTS


def test_a_seeded_grant_serves_the_vendors_authorization_and_read(
    seeded: int, app: FastAPI, vendor: Vendor
) -> None:
    """The seeded grant is the one the authorization finds (its vendor
    copy as grants.create writes it), and the vendor reads through it."""
    client = TestClient(app)
    r = log_in(client, "c9@bench.example", seed.PASSWORD)
    assert r.status_code == 200, r.text
    person = Person("c9@bench.example", seed.PASSWORD, client, r.json()["id"])
    tokens = tokens_for(person, vendor, seed_rows.SCOPES)
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {"email": "contact9@bench.example"}
    assert len(r.json()["history"]) <= EVENTS
