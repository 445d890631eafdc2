"""A stored document that no longer validates never locks its owner out.

Before issue 12 (D1), ``{"free": {"x": 1e999}}`` was stored as
``{"free": {"x": null}}``, which the schema refuses; every later read,
replace, patch and export of it answered 500. Such documents exist in
stores written before the fix (and a schema that tightens makes more), so
each test plants one through the store's own encryption and then uses it
the way its owner would.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlmodel import Session

from tests.conftest import Person
from tests.kit import assert_problem
from vrm.catalogue.history import HistoryEvent
from vrm.catalogue.preferences import Budget, Preferences
from vrm.records.models import DocumentRecord

PREFERENCES = "/api/v1/me/preferences"
PROFILE = "/api/v1/me/profile"
EXPORT = "/api/v1/me/export"

# Each is what the store holds, as the store wrote it (no nulls but the bad one).
LEGACY = [
    pytest.param(PREFERENCES, {"dietary": ["vegan"], "free": {"x": None}}, "free.x", id="1e999"),
    pytest.param(PROFILE, {"given_name": "Ana", "nickname": "Aninha"}, "nickname", id="old-member"),
]
# How the 422 names each (pydantic names each member of FreeValue's union).
ERRORS = {
    "free.x": ["free.x.constrained-str", "free.x.int", "free.x.float", "free.x.bool"],
    "nickname": ["nickname"],
}


def plant(app: FastAPI, customer_id: str, path: str, stored: dict[str, Any]) -> None:
    category = path.rsplit("/", 1)[1]
    with Session(app.state.engine) as session:
        row = session.get(DocumentRecord, (customer_id, category))
        assert row is not None
        sealed = app.state.vault.seal(
            session,
            customer_id=customer_id,
            category=category,
            record_id=category,
            plaintext=json.dumps(stored).encode(),
        )
        row.ciphertext, row.key_version = sealed.ciphertext, sealed.key_version
        row.revision += 1
        session.add(row)
        session.commit()


@pytest.mark.parametrize(("path", "stored", "field"), LEGACY)
def test_its_owner_reads_it_as_stored_and_the_operator_is_told(
    app: FastAPI,
    ana: Person,
    path: str,
    stored: dict[str, Any],
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plant(app, ana.id, path, stored)

    r = ana.client.get(path)

    assert r.status_code == 200, r.text
    assert r.json() == stored
    assert r.headers["etag"].startswith('"2-')
    assert r.headers["cache-control"] == "no-store"
    category = path.rsplit("/", 1)[1]
    assert [(rec.levelname, rec.getMessage()) for rec in caplog.records] == [
        ("WARNING", f"the stored {category} of customer {ana.id} no longer validates")
    ]


@pytest.mark.parametrize(("path", "stored", "field"), LEGACY)
def test_its_owner_exports_it_as_stored(
    app: FastAPI, ana: Person, path: str, stored: dict[str, Any], field: str
) -> None:
    plant(app, ana.id, path, stored)

    r = ana.client.get(EXPORT)

    assert r.status_code == 200, r.text
    assert r.json()[path.rsplit("/", 1)[1]] == stored


@pytest.mark.parametrize("if_match", ["*", "etag"])
@pytest.mark.parametrize(("path", "stored", "field"), LEGACY)
def test_its_owner_overwrites_it(
    app: FastAPI, ana: Person, path: str, stored: dict[str, Any], field: str, if_match: str
) -> None:
    plant(app, ana.id, path, stored)
    etag = ana.client.get(path).headers["etag"] if if_match == "etag" else "*"
    replacement = {"dietary": ["vegan"]} if path == PREFERENCES else {"given_name": "Ana"}

    r = ana.client.put(path, json=replacement, headers={"If-Match": etag})

    assert r.status_code == 200, r.text
    after = ana.client.get(path)
    assert after.json() == r.json()
    assert after.headers["etag"] == r.headers["etag"]
    assert {k: v for k, v in after.json().items() if v not in (None, [], {})} == replacement


@pytest.mark.parametrize(("path", "stored", "field"), LEGACY)
def test_a_patch_that_keeps_the_bad_member_is_422_naming_it_and_changes_nothing(
    app: FastAPI, ana: Person, path: str, stored: dict[str, Any], field: str
) -> None:
    plant(app, ana.id, path, stored)
    before = ana.client.get(path)

    r = ana.client.patch(path, json={"language": "pt"} if path == PROFILE else {"dietary": []})

    problem = assert_problem(r, 422, "validation", errors=ANY)
    assert [e["field"] for e in problem["errors"]] == ERRORS[field]
    after = ana.client.get(path)
    assert (after.json(), after.headers["etag"]) == (before.json(), before.headers["etag"])


@pytest.mark.parametrize(("path", "stored", "field"), LEGACY)
def test_a_patch_that_removes_the_bad_member_repairs_it(
    app: FastAPI, ana: Person, path: str, stored: dict[str, Any], field: str
) -> None:
    plant(app, ana.id, path, stored)
    top, _, inner = field.partition(".")
    patch: dict[str, Any] = {top: {inner: None}} if inner else {top: None}

    r = ana.client.patch(path, json=patch)

    assert r.status_code == 200, r.text
    if path == PREFERENCES:
        expected = {
            "communication": None,
            "shopping": None,
            "dietary": ["vegan"],
            "accessibility": [],
            "free": {},
        }
    else:
        expected = {
            "given_name": "Ana",
            "family_name": None,
            "email": None,
            "phone": None,
            "postal_address": None,
            "birth_date": None,
            "language": None,
        }
    assert r.json() == expected
    assert ana.client.get(path).json() == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_the_catalogue_holds_no_number_that_is_not_finite(value: float) -> None:
    # Whoever builds the model (a route, the demo, a migration): pydantic
    # would write such a float out as null, which the schema then refuses.
    with pytest.raises(ValidationError):
        Preferences(free={"x": value})
    with pytest.raises(ValidationError):
        Budget(amount=Decimal(value), currency="EUR")
    with pytest.raises(ValidationError):
        HistoryEvent(
            vendor="v", type="purchase", occurred_at="2026-01-01T00:00:00Z", amount=Decimal(value)
        )
