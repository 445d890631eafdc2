"""The export is everything the store holds about the customer (GDPR Art.
15 and 20), follows its published JSON Schema, and holds nothing of anyone
else's and no credential.

One customer's whole relationship is seeded through the API, as a
customer and a vendor would make it: profile, preferences, history with
labels and items, a grant narrowed later, a vendor's read and 304 through
the data API, a vendor's deposit, a login session. Every table that holds
a customer's rows is either checked against the export here or listed in
NOT_EXPORTED with the reason; a new such table fails the coverage test
until it is one or the other.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from joserfc import jws
from joserfc.jwk import KeySet
from jsonschema import Draft202012Validator
from sqlmodel import Session, SQLModel, col, select

import vrm.export
from consent.grants.models import GrantChange
from consent.oauth.models import AuthorizationCode, OAuthToken
from consent.vendors.models import Vendor as VendorRow
from tests.conftest import Person
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import read
from vrm.accounts.models import LoginSession
from vrm.history.deposits import VendorDeposit
from vrm.vendor_api.models import AccessEvent

ME = "/api/v1/me"
SCHEMA_URL = "/api/v1/export/schema"
SCOPES = "profile:read preferences:read history:read history:write"


@dataclass
class Seeded:
    """What was stored for one person, and what the vendor was handed."""

    person: Person
    vendor: Vendor
    tokens: dict[str, Any]
    given_name: str
    diet: str
    event_id: str
    item: str
    deposited_item: str
    deposited_id: str


def seed(app: FastAPI, person: Person, vendor: Vendor, mark: str) -> Seeded:
    """Every kind of the person's data, each value carrying ``mark``."""
    put = person.client.put
    assert put(f"{ME}/profile", json={"given_name": f"Given {mark}"}).status_code == 200
    assert put(f"{ME}/preferences", json={"dietary": [f"diet {mark}"]}).status_code == 200
    r = person.client.post(
        f"{ME}/history",
        json={
            "vendor": f"Shop {mark}",
            "type": "purchase",
            "occurred_at": "2026-05-01T10:00:00Z",
            "items": [{"name": f"Item {mark}", "amount": "4.50", "labels": ["gift"]}],
            "labels": ["not_for_me"],
        },
    )
    assert r.status_code == 201, r.text
    event_id = r.json()["id"]
    tokens = tokens_for(person, vendor, SCOPES)
    access = tokens["access_token"]
    # A read through the data API, and a 304 of the same document.
    first = read(vendor, access, "/v1/data/profile")
    assert first.status_code == 200, first.text
    again = read(vendor, access, "/v1/data/profile", **{"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304, again.text
    r = vendor.client.post(
        "/v1/history",
        json={
            "vendor": "Bertrand Books",
            "type": "purchase",
            "occurred_at": "2026-06-01T12:00:00Z",
            "items": [{"name": f"Deposited {mark}", "amount": "9.90"}],
        },
        headers={**bearer(access), "Idempotency-Key": f"order-{mark}"},
    )
    assert r.status_code == 201, r.text
    [deposited] = [
        e["id"]
        for e in person.client.get(f"{ME}/history").json()["items"]
        if e["source"] == f"vendor:{vendor.client_id}"
    ]
    grant = f"{ME}/grants/{tokens['grant_id']}"
    r = person.client.patch(grant, json={"scopes": ["profile:read", "history:read"]})
    assert r.status_code == 200, r.text
    return Seeded(
        person=person,
        vendor=vendor,
        tokens=tokens,
        given_name=f"Given {mark}",
        diet=f"diet {mark}",
        event_id=event_id,
        item=f"Item {mark}",
        deposited_item=f"Deposited {mark}",
        deposited_id=deposited,
    )


def export_of(person: Person) -> dict[str, Any]:
    r = person.client.get(f"{ME}/export")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def rows(app: FastAPI, table: type[SQLModel], customer_id: str) -> list[Any]:
    with Session(app.state.engine) as session:
        column = getattr(table, "customer_id")  # noqa: B009 - every table here has one
        return list(session.exec(select(table).where(col(column) == customer_id)).all())


def published_schema(vendor: Vendor) -> dict[str, Any]:
    r = vendor.client.get(SCHEMA_URL)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# -- the schema ----------------------------------------------------------------


def test_the_schema_is_served_without_a_session_as_it_ships(vendor: Vendor) -> None:
    r = vendor.client.get(SCHEMA_URL)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/schema+json"
    shipped = Path(vrm.export.__file__).with_name("schema.json").read_text(encoding="utf-8")
    assert r.json() == json.loads(shipped)
    Draft202012Validator.check_schema(r.json())
    assert r.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert r.json()["$id"] == "urn:vrm:export:3"
    assert r.json()["properties"]["schema_version"] == {"const": 3}


def test_every_fixed_shape_in_the_schema_is_closed(vendor: Vendor) -> None:
    schema = published_schema(vendor)
    objects = [schema, *schema["$defs"].values()]
    objects += [p for p in schema["properties"].values() if p.get("type") == "object"]
    open_ = sorted(
        d.get("description", "")[:40]
        for d in objects
        if "properties" in d and d.get("additionalProperties") is not False
    )
    assert open_ == []
    # Each closed object requires every member it lists: nothing is left out
    # of an export silently.
    partial = [d for d in objects if "properties" in d and d["required"] != list(d["properties"])]
    assert partial == []


def test_an_export_of_everything_validates_against_the_published_schema(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    seed(app, ana, vendor, "ana")
    body = export_of(ana)
    Draft202012Validator(published_schema(vendor)).validate(body)


def test_an_export_with_a_member_the_schema_does_not_know_fails_it(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    seed(app, ana, vendor, "ana")
    validator = Draft202012Validator(published_schema(vendor))
    for section in ("sessions", "access_log", "deposits", "receipts", "pairwise_ids", "grants"):
        body = export_of(ana)
        body[section][0]["token_hash"] = "00"
        errors = [e.message for e in validator.iter_errors(body)]
        assert errors == ["Additional properties are not allowed ('token_hash' was unexpected)"]


# -- everything the store holds ------------------------------------------------


def _receipt_payload(vendor: Vendor, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(vendor.client.get("/oauth/jwks").json())
    payload: dict[str, Any] = json.loads(
        jws.deserialize_compact(token, keys, algorithms=["ES256"]).payload
    )
    return payload


def _check_account(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    assert body["account"]["id"] == s.person.id
    assert body["account"]["email"] == s.person.email


def _check_documents(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    assert body["profile"]["given_name"] == s.given_name
    assert body["preferences"]["dietary"] == [s.diet]


def _check_history(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    events = {e["id"]: e for e in body["history"]}
    own = events[s.event_id]
    assert own["labels"] == ["not_for_me"]
    assert own["items"] == [{"name": s.item, "sku": None, "quantity": 1, "amount": "4.50",
                             "labels": ["gift"]}]  # fmt: skip
    assert events[s.deposited_id]["source"] == f"vendor:{s.vendor.client_id}"


def _check_grants(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    [grant] = body["grants"]
    assert grant["id"] == s.tokens["grant_id"]
    assert grant["scopes"] == ["history:read", "profile:read"]


def _check_grant_changes(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    [grant] = body["grants"]
    with Session(app.state.engine) as session:
        stored = session.exec(
            select(GrantChange).where(col(GrantChange.grant_id) == grant["id"])
        ).all()
    assert [c["kind"] for c in grant["changes"]] == [c.kind for c in stored]
    assert [c["kind"] for c in grant["changes"]] == ["granted", "narrowed"]


def _check_access_log(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    stored = sorted(rows(app, AccessEvent, s.person.id), key=lambda r: (r.at, r.id))
    vendor = {"id": s.vendor.client_id, "name": "Bertrand Books"}
    assert body["access_log"] == [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "vendor": vendor,
            "action": r.action,
            "grant_id": s.tokens["grant_id"],
            "purpose": "dpv:ServiceProvision",
            "subject": s.vendor.introspect(s.tokens["access_token"])["sub"],
            "categories": r.categories,
            "fields": r.fields,
            "not_modified": r.not_modified,
        }
        for r in stored
    ]
    # The read, its 304 and the deposit, ordered by time: a deposit's entry
    # carries only its day (vrm/history/deposits.py), so it sorts first.
    profile = ["profile.given_name", "profile.family_name", "profile.email", "profile.phone",
               "profile.postal_address", "profile.birth_date", "profile.language"]  # fmt: skip
    assert [(e["action"], e["fields"], e["not_modified"]) for e in body["access_log"]] == [
        ("write", ["history"], False),
        ("read", profile, False),
        ("read", profile, True),
    ]


def _check_deposits(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    [stored] = rows(app, VendorDeposit, s.person.id)
    assert body["deposits"] == [
        {
            "vendor": {"id": s.vendor.client_id, "name": "Bertrand Books"},
            "created_on": stored.created_on.isoformat(),
            "event_id": s.deposited_id,
        }
    ]


def _check_sessions(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    [stored] = rows(app, LoginSession, s.person.id)
    listed = s.person.client.get("/api/v1/me/sessions").json()["items"]
    assert body["sessions"] == [
        {
            "id": stored.id,
            "device": listed[0]["device"],
            "created_at": stored.created_at.isoformat().replace("+00:00", "Z"),
            "last_used_at": stored.last_used_at.isoformat().replace("+00:00", "Z"),
            "expires_at": stored.expires_at.isoformat().replace("+00:00", "Z"),
        }
    ]
    # As GET /me/sessions shows it, but for "current", which a file lacks.
    assert [{**item, "current": True} for item in body["sessions"]] == listed


def _check_receipts_and_pairwise_ids(app: FastAPI, s: Seeded, body: dict[str, Any]) -> None:
    subject = s.vendor.introspect(s.tokens["access_token"])["sub"]
    assert body["pairwise_ids"] == [
        {"vendor": {"id": s.vendor.client_id, "name": "Bertrand Books"}, "subject": subject}
    ]
    [receipt] = body["receipts"]
    assert receipt["grant_id"] == s.tokens["grant_id"]
    assert receipt["media_type"] == "application/jose"
    record = _receipt_payload(s.vendor, receipt["jws"])
    assert record["record_id"] == s.tokens["grant_id"]
    assert record["data_subject"] == {"id": subject, "id_type": "pairwise"}
    assert [h["event"] for h in record["history"]] == ["granted", "narrowed"]


Check = Callable[[FastAPI, Seeded, dict[str, Any]], None]

# Each table that holds a customer's rows, and how the export shows it.
EXPORTED: dict[str, Check] = {
    "customer": _check_account,
    "document_record": _check_documents,
    "history_record": _check_history,
    "consent_grant": _check_grants,
    "grant_change": _check_grant_changes,
    "access_event": _check_access_log,
    "vendor_deposit": _check_deposits,
    "login_session": _check_sessions,
}
# Not in the export, and why.
NOT_EXPORTED = {
    "data_key": "wrapped key material: no data about the customer, and a key must not leave",
    "key_escrow": "wrapped key material a live grant holds: the grants above say what it shares",
    "data_change": "the change log's position of each record exported above: bookkeeping",
    "feed_notice": "what each vendor is told of a grant's start or end: the grant's changes",
    "vendor_notice": "where the push of each feed_notice stands; its attempts are in audit_log",
    "oauth_token": "credentials, kept as keyed hashes; what was done with them is access_log",
    "authorization_code": "one-minute single-use credentials, kept as keyed hashes",
    "device_authorization": "ten-minute single-use vrm-me login codes, kept as keyed hashes",
    "pending_deposit": "deposits held while the customer is away; the log-in the export needs "
    "folds them into history first",
}


def _tables_of_customers() -> set[str]:
    """Tables with a customer_id, and the tables whose rows hang off theirs
    by a foreign key (a grant's changes), and so on."""
    tables = SQLModel.metadata.sorted_tables
    found = {t.name for t in tables if "customer_id" in t.c or t.name == "customer"}
    while True:
        more = {
            t.name
            for t in tables
            if any(fk.column.table.name in found for fk in t.foreign_keys) and t.name not in found
        }
        if not more:
            return found
        found |= more


def test_every_table_with_customer_rows_is_exported_or_says_why_not() -> None:
    assert sorted(_tables_of_customers()) == sorted([*EXPORTED, *NOT_EXPORTED])


def test_the_export_holds_a_value_from_every_table_that_holds_the_customers_data(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    seeded = seed(app, ana, vendor, "ana")
    body = export_of(ana)
    for check in EXPORTED.values():
        check(app, seeded, body)
    _check_receipts_and_pairwise_ids(app, seeded, body)
    assert list(body) == [
        "schema", "schema_version", "exported_at", "account", "profile", "preferences",
        "history", "sessions", "grants", "receipts", "pairwise_ids", "access_log", "deposits",
        "audit_log",
    ]  # fmt: skip


def test_a_vendor_gone_from_the_register_is_still_in_the_access_log(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    seeded = seed(app, ana, vendor, "ana")
    with Session(app.state.engine) as session:
        row = session.get(VendorRow, vendor.client_id)
        session.delete(row)
        session.commit()
    body = export_of(ana)
    gone = {"id": vendor.client_id, "name": None}
    assert [e["vendor"] for e in body["access_log"]] == [gone, gone, gone]
    assert [d["vendor"] for d in body["deposits"]] == [gone]
    # Its grants went with its registration; the subject it knew stays.
    assert body["grants"] == body["receipts"] == body["pairwise_ids"] == []
    subject = {e["subject"] for e in body["access_log"]}
    assert len(subject) == 1
    assert seeded.tokens["grant_id"] in {e["grant_id"] for e in body["access_log"]}
    Draft202012Validator(published_schema(vendor)).validate(body)


# -- nothing else --------------------------------------------------------------


@pytest.fixture
def both(app: FastAPI, ana: Person, bob: Person) -> tuple[Seeded, Seeded]:
    """Ana and bob, each with everything, at the same two vendors."""
    shop, pharmacy = register_vendor(app), register_vendor(app, "Farmácia Central")
    return seed(app, ana, shop, "ana-marker"), seed(app, bob, pharmacy, "bob-marker")


def test_the_export_never_holds_another_customers_data(
    app: FastAPI, both: tuple[Seeded, Seeded]
) -> None:
    ana, bob = both
    text = json.dumps(export_of(ana.person), ensure_ascii=False)
    assert "ana-marker" in text
    theirs = [
        "bob-marker",
        bob.person.id,
        bob.person.email,
        bob.tokens["grant_id"],
        bob.vendor.client_id,
        bob.vendor.introspect(bob.tokens["access_token"])["sub"],
        bob.deposited_id,
        bob.event_id,
    ]
    assert [value for value in theirs if value in text] == []


def _encodings(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


def test_the_export_never_holds_a_token_or_a_token_hash(
    app: FastAPI, both: tuple[Seeded, Seeded]
) -> None:
    ana, _ = both
    text = json.dumps(export_of(ana.person), ensure_ascii=False)
    cookie = ana.person.client.cookies["vrm_session"]
    tokens = [cookie, ana.tokens["access_token"], ana.tokens["refresh_token"]]
    tokens.append(ana.vendor.client_secret)
    hashes: list[bytes] = [app.state.vault.token_hash(t) for t in tokens]
    hashes += [r.token_hash for r in rows(app, LoginSession, ana.person.id)]
    for token in rows(app, OAuthToken, ana.person.id):
        hashes += [token.access_hash, *([token.refresh_hash] if token.refresh_hash else [])]
    hashes += [c.code_hash for c in rows(app, AuthorizationCode, ana.person.id)]
    assert len(hashes) >= 7
    found = [t for t in tokens if t in text]
    found += [e for h in hashes for e in _encodings(h) if e in text]
    assert found == []
