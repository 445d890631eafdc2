"""A customer of the pages connected to a vendor as the tests of consent
connect one (tests/consent/conftest.py): through the real consent page,
the code swapped for tokens at the token endpoint."""

from __future__ import annotations

from typing import Any

import httpx

from tests.client.web.conftest import Customer
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer


def as_person(who: Customer) -> Person:
    """The consent helpers' view of a customer: their browser."""
    return Person(email=who.email, password=who.password, client=who.http, id="")


def connect(who: Customer, vendor: Vendor, scope: str, **kw: Any) -> tuple[str, str]:
    """A new grant of ``scope`` to ``vendor``: its id and an access token."""
    tokens = tokens_for(as_person(who), vendor, scope, **kw)
    r = who.http.get("/api/v1/me/grants")
    assert r.status_code == 200, r.text
    newest = r.json()["items"][0]
    assert newest["vendor"]["id"] == vendor.client_id
    return newest["id"], tokens["access_token"]


def grant_of(who: Customer, grant_id: str) -> dict[str, Any]:
    r = who.http.get(f"/api/v1/me/grants/{grant_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def vendor_read(vendor: Vendor, token: str) -> httpx.Response:
    """The vendor's own GET /v1/data."""
    return vendor.client.get("/v1/data", headers=bearer(token))
