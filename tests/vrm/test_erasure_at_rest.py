"""Erasure leaves nothing of the customer in the database files.

A customer with a profile, history, a vendor that read their data and a
failed log-in is erased; then the raw SQLite files (database, WAL and
shared memory) or a pg_dump of the PostgreSQL database are searched for
their id, their email (and its blind index) and the ids of their events
and of the vendor's reads. What stays on purpose (docs/threat-model.md):
the vendor's tombstone, under the pairwise subject and the grant id the
vendor already holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select
from typer.testing import CliRunner

from consent.oauth.models import OAuthToken
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import PROFILE, access_events, add_event, feed_token, put, read
from tests.vrm.test_at_rest import _found, _stored_bytes
from vrm import cli
from vrm.accounts.models import Customer, LoginThrottle
from vrm.feed.models import FeedNotice
from vrm.keys.server import SERVER_KEYS
from vrm.settings import Settings

ME = "/api/v1/me"
EMAIL = "Erin.Erasure.3f9c@Example.ORG"


@dataclass
class Erased:
    person: Person
    email_index: bytes
    event_ids: list[str]
    access_ids: list[str]
    grant_id: str
    subject: str


def _wal_emptied(settings: Settings, timeout: float = 5.0) -> None:
    """Give the server's checkpoint thread time to truncate the WAL (the
    search that follows fails if it did not)."""
    if not settings.is_sqlite:
        return
    wal = settings.data_dir / "vrm.db-wal"
    deadline = time.monotonic() + timeout
    while wal.exists() and wal.stat().st_size > 0 and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.fixture
def erin(app: FastAPI, client: TestClient) -> Iterator[Person]:
    # ``client`` runs the app's lifespan: the checkpoint thread is on.
    person = sign_up_and_log_in(app, EMAIL)
    yield person
    person.client.close()


@pytest.fixture
def lived(app: FastAPI, client: TestClient, erin: Person) -> Erased:
    """Erin's life in the store, up to just before erasure."""
    put(erin, "profile", PROFILE)
    event_ids = [
        add_event(erin, occurred_at=f"2024-05-0{n + 1}T10:00:00Z", notes=f"note {n}")
        for n in range(3)
    ]
    vendor = register_vendor(app)
    tokens = tokens_for(erin, vendor, "profile.email:read history:read")
    for _ in range(3):
        r = read(vendor, tokens["access_token"])
        assert r.status_code == 200, r.text
    subject = r.json()["subject"]
    r = vendor.client.get("/v1/feed", headers=bearer(feed_token(vendor)))
    assert r.status_code == 200, r.text
    # A failed log-in: counted against the address, and against Erin's
    # account at that address.
    r = client.post("/api/v1/session", json={"email": EMAIL, "password": "not her password"})
    assert r.status_code == 401, r.text
    with Session(app.state.engine) as session:
        customer = session.get(Customer, erin.id)
        assert customer is not None
        email_index = customer.email_index
    return Erased(
        person=erin,
        email_index=email_index,
        event_ids=event_ids,
        access_ids=[e.id for e in access_events(app, erin.id)],
        grant_id=tokens["grant_id"],
        subject=subject,
    )


def _erase(person: Person) -> None:
    r = person.client.request("DELETE", ME, json={"password": person.password})
    assert r.status_code == 204, r.text


def _traces(stored: bytes, erased: Erased) -> list[str]:
    """What of the customer ``stored`` still holds, by name."""
    wanted = {
        "customer id": erased.person.id,
        "email": EMAIL,
        "email index": erased.email_index.hex(),
        **{f"event {n}": event_id for n, event_id in enumerate(erased.event_ids)},
        **{f"read {n}": access_id for n, access_id in enumerate(erased.access_ids)},
    }
    found = [name for name, value in wanted.items() if _found(stored, value)]
    if erased.email_index in stored:  # raw, as SQLite stores a blob
        found.append("email index (raw)")
    return found


def test_erasure_leaves_no_trace_of_the_customer_in_the_database_files(
    settings: Settings, lived: Erased
) -> None:
    before = _traces(_stored_bytes(settings), lived)
    # The search finds what is there (the email is sealed from the start).
    assert len(lived.access_ids) == 4  # three reads and the feed's snapshot
    assert "customer id" in before
    assert "event 2" in before
    assert "read 2" in before

    _erase(lived.person)
    _wal_emptied(settings)

    assert _traces(_stored_bytes(settings), lived) == []


def test_erasure_removes_the_accounts_login_counters_and_started_notices(
    app: FastAPI, lived: Erased
) -> None:
    vault = app.state.vault
    address_key = vault.blind_index("client-address", "testclient")
    with Session(app.state.engine) as session:
        keys = set(session.exec(select(LoginThrottle.key)).all())
        assert address_key in keys
        assert len(keys) == 2  # the address, and Erin's account at it
        kinds = session.exec(
            select(FeedNotice.kind).where(col(FeedNotice.customer_id) == lived.person.id)
        ).all()
        assert list(kinds) == ["started"]

    _erase(lived.person)

    with Session(app.state.engine) as session:
        # The address's own counter stays: it counts the client, not Erin.
        assert set(session.exec(select(LoginThrottle.key)).all()) == {address_key}
        notices = session.exec(select(FeedNotice)).all()
        assert [
            (n.kind, n.reason, n.grant_id, n.customer_id, n.subject, n.fields) for n in notices
        ] == [
            (
                "ended",
                "account_deleted",
                lived.grant_id,
                None,
                lived.subject,
                ["history", "profile.email"],
            )
        ]


def test_erasure_by_the_operator_command_leaves_no_trace_either(
    settings: Settings, lived: Erased
) -> None:
    # The server still runs (its connections keep the WAL file open): the
    # command truncates the WAL itself before it returns.
    env = {"VRM_DATA_DIR": str(settings.data_dir), "VRM_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(cli.app, ["customers", "erase", lived.person.id], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"erased customer {lived.person.id}\n"

    assert _traces(_stored_bytes(settings), lived) == []


def test_erasure_leaves_rows_only_where_they_are_kept_on_purpose(
    app: FastAPI, lived: Erased
) -> None:
    _erase(lived.person)
    with app.state.engine.connect() as conn:
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }
    assert {name: n for name, n in counts.items() if n} == {
        "feed_clock": 1,  # the change log's position
        # Each server key's check (vrm/keys/server.py): no customer.
        "server_key_check": len(SERVER_KEYS),
        "vendor": 2,  # the vendor, and the store's own client (vrm-me)
        # The vendor's own feed token (client credentials): no customer.
        "oauth_token": 1,
        # Erin's tombstone, under the pairwise subject (test above).
        "feed_notice": 1,
        # The client address's counter: it counts the address, not Erin.
        "login_throttle": 1,
        # The audit log: its size, and its entries (by pseudonym, whose salt
        # went with Erin's account: docs/audit.md).
        "audit_head": 1,
        "audit_entry": counts["audit_entry"],
    }
    assert counts["audit_entry"] > 0
    with Session(app.state.engine) as session:
        token = session.exec(select(OAuthToken)).one()
    assert (token.customer_id, token.grant_id, token.scope) == (None, None, "feed:read")
