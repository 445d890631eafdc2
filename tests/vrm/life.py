"""A customer's whole life in the store, through the HTTP API, with the
database read directly after every step (tests/vrm/test_life.py).

What is read: every table and column the schema has (found by SQLAlchemy's
inspector, so a table added later is read too), as the driver returns it,
and on SQLite the bytes of ``vrm.db`` and ``vrm.db-wal``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import column, inspect, select, table, update
from sqlmodel import Session, col

from consent.grants.models import Grant
from consent.vendors import service as vendors
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import ISSUER, REDIRECT_URI, Vendor, register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import RECEIPT, feed_token, read_feed
from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow
from vrm.settings import Settings

ME = "/api/v1/me"
# A value of a row, as the driver gives it.
Row = dict[str, Any]
# A deposit body without its vendor, which each walk names itself.
DEPOSIT = {k: v for k, v in RECEIPT.items() if k != "vendor"}
VENDOR_B = {
    "client_name": "Livraria Lello",
    "redirect_uris": [REDIRECT_URI],
    "policy_uri": "https://lello.example/privacy",
    "contacts": ["dpo@lello.example"],
}
# The label of each of the 20 events, in order: five of each kind.
LABELS: list[list[str]] = [[["gift"], ["private"], ["not_for_me"], []][n % 4] for n in range(20)]


@dataclass
class Snapshot:
    step: str
    rows: dict[str, list[Row]]
    # vrm.db then vrm.db-wal, on SQLite; None on PostgreSQL.
    files: bytes | None


@dataclass(repr=False)
class Life:
    """What the walk did, and what the database held after each step."""

    person: Person
    email_index: bytes
    markers: list[str]
    events: list[str]
    private_from_start: list[str]
    made_private: str
    # Lived as the one made private did (written, then relabelled), not private.
    ordinary: str
    deposited: str
    deposit_body: dict[str, Any]
    vendor_ids: list[str]
    grant_ids: list[str]
    subjects: list[str]
    vendor_b_as_consented: dict[str, Any]
    # The login counter of the test client's address alone, not the account's.
    address_key: bytes
    receipts: list[str] = field(default_factory=list)
    grant_views: list[dict[str, Any]] = field(default_factory=list)
    export: dict[str, Any] = field(default_factory=dict, repr=False)
    snapshots: list[Snapshot] = field(default_factory=list, repr=False)

    def at(self, step: str) -> Snapshot:
        (found,) = [s for s in self.snapshots if s.step == step]
        return found

    def after(self, step: str) -> list[Snapshot]:
        index = [s.step for s in self.snapshots].index(step)
        return self.snapshots[index:]


def _plain(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview) else value


def read_everything(app: FastAPI, settings: Settings) -> tuple[dict[str, list[Row]], bytes | None]:
    engine = app.state.engine
    found: dict[str, list[Row]] = {}
    inspector = inspect(engine)
    with engine.connect() as conn:
        for name in inspector.get_table_names():
            columns = [c["name"] for c in inspector.get_columns(name)]
            # Untyped columns: the values as stored, with no type's processing.
            query: Any = select(*[column(c) for c in columns]).select_from(table(name))
            found[name] = [
                {c: _plain(v) for c, v in zip(columns, row, strict=True)}
                for row in conn.execute(query)
            ]
    if not settings.is_sqlite:
        return found, None
    db = settings.data_dir / "vrm.db"
    files = [db, db.with_name("vrm.db-wal")]
    return found, b"".join(f.read_bytes() for f in files if f.exists())


def cell_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False).encode()
    return str(value).encode()


def _ok(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def _register_dynamic(app: FastAPI) -> tuple[Vendor, dict[str, Any]]:
    with Session(app.state.engine) as session:
        initial = vendors.issue_initial_access_token(
            session, app.state.vault, label="onboarding", ttl=timedelta(days=1)
        )
    web = TestClient(app)
    body = _ok(web.post("/oauth/register", json=VENDOR_B, headers=bearer(initial)), 201)
    vendor = Vendor(body["client_id"], body["client_secret"], REDIRECT_URI, web)
    return vendor, body


def walk(app: FastAPI, settings: Settings) -> Life:
    snapshots: list[Snapshot] = []

    def snap(step: str) -> None:
        rows, files = read_everything(app, settings)
        snapshots.append(Snapshot(step, rows, files))

    tag = uuid.uuid4().hex
    email = f"Life.{tag[:12]}@Example.ORG"
    person = sign_up_and_log_in(app, email)
    me = person.client
    # A second device, and a mistyped password: login times and a counter.
    phone = TestClient(app)
    _ok(phone.post("/api/v1/session", json={"email": email, "password": person.password}))
    # Last: a right password would clear the account's counter.
    _ok(phone.post("/api/v1/session", json={"email": email, "password": "no"}), 401)
    snap("signed_up")

    markers = [f"{kind}{uuid.uuid4().hex}" for kind in ("given", "family", "street", "diet")]
    _ok(
        me.put(
            f"{ME}/profile",
            json={
                "given_name": markers[0],
                "family_name": markers[1],
                "email": f"c.{tag}@example.net",
                "postal_address": {"street_address": markers[2], "country": "PT"},
            },
        )
    )
    _ok(me.put(f"{ME}/preferences", json={"dietary": [markers[3]]}))
    snap("profile_written")

    events: list[str] = []
    for n, labels in enumerate(LABELS):
        notes, shop = f"notes{uuid.uuid4().hex}", f"shop{uuid.uuid4().hex}"
        markers += [notes, shop]
        body = {
            "vendor": shop,
            "type": "purchase",
            "notes": notes,
            "labels": labels,
            "occurred_at": f"2026-10-{n + 1:02d}T10:00:00Z",
        }
        events.append(_ok(me.post(f"{ME}/history", json=body), 201)["id"])
    private_from_start = [
        e for e, labels in zip(events, LABELS, strict=True) if "private" in labels
    ]
    unlabelled = [e for e, labels in zip(events, LABELS, strict=True) if not labels]
    made_private, ordinary = unlabelled[0], unlabelled[1]
    snap("history_added")

    vendor_a = register_vendor(app, "Bertrand Books")
    vendor_b, registration = _register_dynamic(app)
    snap("vendors_registered")

    a = tokens_for(person, vendor_a, "profile:read preferences:read history:read")
    b = tokens_for(person, vendor_b, "profile.email:read history:read history:write")
    snap("granted")

    subjects = [
        _ok(v.client.get("/v1/data", headers=bearer(t["access_token"])))["subject"]
        for v, t in ((vendor_a, a), (vendor_b, b))
    ]
    feed = feed_token(vendor_a)
    _, cursors = read_feed(vendor_a, feed)
    a = _ok(vendor_a.refresh(a["refresh_token"])) | {"grant_id": a["grant_id"]}
    snap("vendors_read")

    merge = {"content-type": "application/merge-patch+json"}
    _ok(me.patch(f"{ME}/history/{made_private}", content=b'{"labels":["private"]}', headers=merge))
    _ok(me.patch(f"{ME}/history/{ordinary}", content=b'{"labels":["gift"]}', headers=merge))
    read_feed(vendor_a, feed, cursors[-1])
    snap("made_private")

    deposit_body = {"vendor": f"shop{tag}", **DEPOSIT}
    _ok(
        vendor_b.client.post(
            "/v1/history",
            json=deposit_body,
            headers={**bearer(b["access_token"]), "Idempotency-Key": f"order-{tag}"},
        ),
        201,
    )
    listed = _ok(me.get(f"{ME}/history", params={"limit": 100}))["items"]
    (deposited,) = [e["id"] for e in listed if e["id"] not in events]
    snap("deposited")

    _ok(me.patch(f"{ME}/grants/{a['grant_id']}", json={"scopes": ["profile.email:read"]}))
    snap("narrowed")

    # The vendor renames itself and moves its policy after the customer said yes.
    manage = bearer(registration["registration_access_token"])
    path = registration["registration_client_uri"].removeprefix(ISSUER)
    renamed = {
        **VENDOR_B,
        "client_id": vendor_b.client_id,
        "client_name": "Someone Else",
        "policy_uri": "https://else.example/privacy",
        "contacts": ["x@else.example"],
    }
    _ok(vendor_b.client.put(path, json=renamed, headers=manage))
    life_receipts = [me.get(f"{ME}/grants/{g}/receipt").text for g in (b["grant_id"],)]
    grant_views = [_ok(me.get(f"{ME}/grants/{b['grant_id']}"))]
    snap("vendor_renamed")

    _ok(me.delete(f"{ME}/grants/{b['grant_id']}"), 204)
    snap("revoked")

    with Session(app.state.engine) as session:
        session.exec(
            update(Grant)
            .where(col(Grant.id) == a["grant_id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    _ok(vendor_a.client.get("/v1/data", headers=bearer(a["access_token"])), 401)
    read_feed(vendor_a, feed, cursors[-1])
    snap("expired")

    _ok(me.delete(f"{ME}/history/{deposited}"), 204)
    snap("deposit_deleted")

    export = _ok(me.get(f"{ME}/export"))
    snap("exported")

    with Session(app.state.engine) as session:
        found = session.get(Customer, person.id)
        assert found is not None
        email_index = found.email_index
    _ok(me.request("DELETE", ME, json={"password": person.password}), 204)
    snap("erased")
    read_feed(vendor_a, feed, cursors[-1])
    snap("tombstone_read")

    return Life(
        person=person,
        email_index=email_index,
        markers=markers,
        events=events,
        private_from_start=private_from_start,
        made_private=made_private,
        ordinary=ordinary,
        deposited=deposited,
        deposit_body=deposit_body,
        vendor_ids=[vendor_a.client_id, vendor_b.client_id],
        grant_ids=[a["grant_id"], b["grant_id"]],
        subjects=subjects,
        vendor_b_as_consented={
            "id": vendor_b.client_id,
            "name": VENDOR_B["client_name"],
            "privacy_notice": VENDOR_B["policy_uri"],
            "contacts": VENDOR_B["contacts"],
        },
        # The service's own rule, so a change of key scheme follows it.
        address_key=accounts._address_key(app.state.vault, "testclient"),
        receipts=life_receipts,
        grant_views=grant_views,
        export=export,
        snapshots=snapshots,
    )
