"""The log as the database keeps it: every change with its entry, in one
transaction; indexes without gaps; no entry changed or removed; nothing
personal in it; an erased customer unlinkable."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from consent.audit import entries, log
from consent.audit.entries import Event
from consent.audit.merkle import leaf_hash
from consent.audit.models import AuditEntry
from consent.grants.models import Grant
from tests.conftest import PASSWORD, Person
from tests.consent.conftest import Vendor, authorize, decide, start, tokens_for
from tests.kit import bearer, exported, vrm
from vrm.accounts.models import Customer
from vrm.catalogue import DATA_KEYS
from vrm.dbtypes import utcnow
from vrm.settings import Settings


def _entries(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEntry.idx, AuditEntry.body, AuditEntry.leaf_hash).order_by(AuditEntry.idx)
        ).all()
    found = []
    for idx, body, hashed in rows:
        assert hashed == leaf_hash(body)
        found.append({"idx": idx, **entries.parse(body)})
    return found


def _salt(engine: Engine, customer_id: str) -> bytes:
    with Session(engine) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return customer.audit_salt


def test_a_grant_and_a_read_are_logged_with_pseudonyms_and_field_names_only(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    tokens = tokens_for(ana, vendor, "profile.email:read")
    r = vendor.client.get("/v1/data/profile", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text

    found = _entries(app.state.engine)
    assert [e["type"] for e in found] == [
        "vendor.registered",
        "consent.granted",
        "token.issued",
        "data.read",
    ]
    assert [e["idx"] for e in found] == [0, 1, 2, 3]
    _, granted, _, read = found
    salt = _salt(app.state.engine, ana.id)
    pseudonym = entries.pseudonym(salt)
    with Session(app.state.engine) as session:
        grant = session.exec(select(Grant)).one()
    assert granted == {
        "idx": 1,
        "v": 1,
        "type": "consent.granted",
        "at": granted["at"],
        "customer": pseudonym,
        "commitment": entries.commitment(salt, {"customer_id": ana.id}),
        "vendor": vendor.client_id,
        "grant": grant.id,
        "by": "customer",
        "purpose": "dpv:ServiceProvision",
        "scopes": ["profile.email:read"],
        "expires_at": grant.expires_at.isoformat().replace("+00:00", "Z"),
    }
    subject = r.json()["sub"] if "sub" in r.json() else None
    assert read == {
        "idx": 3,
        "v": 1,
        "type": "data.read",
        "at": read["at"],
        "customer": pseudonym,
        "commitment": read["commitment"],
        "vendor": vendor.client_id,
        "grant": grant.id,
        "via": "data",
        "purpose": "dpv:ServiceProvision",
        "categories": ["profile"],
        "fields": ["profile.email"],
    }
    # What the read committed to: the customer and the subject the vendor
    # knows them by, which only the salt's holder can show.
    with app.state.engine.connect() as conn:
        (stored_subject,) = conn.execute(text("SELECT subject FROM access_event")).one()
    if subject is not None:
        assert stored_subject == subject
    assert read["commitment"] == entries.commitment(
        salt, {"customer_id": ana.id, "subject": stored_subject}
    )
    # No personal value anywhere in the log: not the account id, the email,
    # the subject or the email's value.
    with app.state.engine.connect() as conn:
        raw = b"".join(conn.execute(text("SELECT body FROM audit_entry")).scalars())
    for secret in (ana.id, ana.email, stored_subject, "ana@"):
        assert secret.encode() not in raw


def test_a_denial_narrowing_and_revocation_are_logged(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    refused = decide(ana, start(ana, vendor, "profile.email:read"), decision="deny")
    assert refused.query["error"] == ["access_denied"]
    authorize(ana, vendor, "profile.email:read profile.given_name:read")
    grant_id = ana.client.get("/api/v1/me/grants").json()["items"][0]["id"]
    r = ana.client.patch(f"/api/v1/me/grants/{grant_id}", json={"scopes": ["profile.email:read"]})
    assert r.status_code == 200, r.text
    r = ana.client.delete(f"/api/v1/me/grants/{grant_id}")
    assert r.status_code in (200, 204), r.text

    found = _entries(app.state.engine)[1:]  # after the vendor's registration
    assert [e["type"] for e in found] == [
        "consent.denied",
        "consent.granted",
        "consent.narrowed",
        "consent.revoked",
    ]
    denied, _, narrowed, revoked = found
    assert denied["requested"] == ["profile.email:read"]
    assert "grant" not in denied
    assert narrowed["from_scopes"] == ["profile.email:read", "profile.given_name:read"]
    assert narrowed["scopes"] == ["profile.email:read"]
    assert (revoked["by"], revoked["grant"]) == ("customer", grant_id)


def test_erasure_is_logged_and_leaves_its_customer_unlinkable(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "profile.email:read")
    salt = _salt(app.state.engine, ana.id)
    r = ana.client.request("DELETE", "/api/v1/me", json={"password": PASSWORD})
    assert r.status_code == 204, r.text

    found = _entries(app.state.engine)[1:]  # after the vendor's registration
    assert [e["type"] for e in found] == ["consent.granted", "consent.revoked", "account.erased"]
    assert found[1]["by"] == "account_deleted"
    assert {e["customer"] for e in found} == {entries.pseudonym(salt)}
    # The salt went with the account: nothing left in the database opens
    # the commitments or names the pseudonym.
    with app.state.engine.connect() as conn:
        salts = conn.execute(text("SELECT audit_salt FROM customer")).scalars().all()
    assert salt not in salts
    # Nor does this process keep it.
    assert log.SALTS.get(ana.id) is None


def test_the_database_refuses_to_change_or_remove_an_entry(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "profile.email:read")
    engine: Engine = app.state.engine
    with engine.begin() as conn:
        _seed_tree_rows(conn)  # a row of each table to refuse to change
    for statement in (
        "UPDATE audit_entry SET body = X'00'"
        if engine.dialect.name == "sqlite"
        else "UPDATE audit_entry SET body = '\\x00'::bytea",
        "UPDATE audit_entry SET type = 'data.read'",
        "DELETE FROM audit_entry",
        "DELETE FROM audit_node",
        "UPDATE audit_checkpoint SET note = ''",
        "DELETE FROM audit_checkpoint",
        "DELETE FROM audit_cosignature",
    ):
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("TRUNCATE audit_entry"))
    assert [e["type"] for e in _entries(engine)] == ["vendor.registered", "consent.granted"]


def _seed_tree_rows(conn: Any) -> None:
    now = utcnow().replace(tzinfo=None)
    conn.execute(text("INSERT INTO audit_node (level, idx, hash) VALUES (1, 0, :h)"), {"h": b"h"})
    conn.execute(
        text("INSERT INTO audit_checkpoint (size, root, signed_at, note) VALUES (1, :r, :at, 'n')"),
        {"r": b"r", "at": now},
    )
    conn.execute(
        text(
            "INSERT INTO audit_cosignature (size, witness, line, received_at) "
            "VALUES (1, 'w', 'l', :at)"
        ),
        {"at": now},
    )


def test_a_change_whose_entry_cannot_be_appended_is_rolled_back(
    app: FastAPI, ana: Person, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: Any, events: Any) -> int:
        raise RuntimeError("the log's disk is full")

    monkeypatch.setattr(log, "append", broken)
    auth = start(ana, vendor, "profile.email:read")
    assert decide(ana, auth).page.status_code == 500
    monkeypatch.undo()
    with Session(app.state.engine) as session:
        assert session.exec(select(Grant)).all() == []
    assert [e["type"] for e in _entries(app.state.engine)] == ["vendor.registered"]


def test_an_entry_whose_change_fails_is_rolled_back_with_it(
    app: FastAPI, ana: Person, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consent.grants import service

    def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("the change log refused")

    # The grant's start on the change log is written after its entry.
    monkeypatch.setattr(service.feed, "grant_started", broken)
    auth = start(ana, vendor, "profile.email:read")
    assert decide(ana, auth).page.status_code == 500
    monkeypatch.undo()
    assert [e["type"] for e in _entries(app.state.engine)] == ["vendor.registered"]
    with Session(app.state.engine) as session:
        assert session.exec(select(Grant)).all() == []


def test_concurrent_appenders_get_every_index_once(app: FastAPI, ana: Person) -> None:
    engine: Engine = app.state.engine
    errors: list[BaseException] = []
    per_thread, threads = 20, 4

    def appender(n: int) -> None:
        try:
            for i in range(per_thread):
                with engine.begin() as conn:
                    event = Event(
                        type="account.exported",
                        at=utcnow(),
                        customer_id=ana.id,
                        details={"n": n * 1000 + i},
                    )
                    log.append(conn, [event])
        except BaseException as exc:  # reported below
            errors.append(exc)

    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer; its appenders queue on the write lock")
    workers = [threading.Thread(target=appender, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    found = _entries(engine)
    assert [e["idx"] for e in found] == list(range(per_thread * threads))
    assert sorted(e["n"] for e in found) == sorted(
        n * 1000 + i for n in range(threads) for i in range(per_thread)
    )


def test_a_rolled_back_append_gives_its_indexes_back(app: FastAPI, ana: Person) -> None:
    engine: Engine = app.state.engine
    event = Event(type="account.exported", at=utcnow(), customer_id=ana.id)
    with engine.connect() as conn:
        assert log.append(conn, [event, event]) == 0
        conn.rollback()
    with engine.begin() as conn:
        assert log.append(conn, [event]) == 0
        assert log.size(conn) == 1
    assert [e["idx"] for e in _entries(engine)] == [0]


def test_one_append_of_several_entries_stores_each_in_order(app: FastAPI, ana: Person) -> None:
    # On PostgreSQL the entries go to the server as one JSON array, bytes in
    # hex: each column must come back as the event and its body say.
    engine: Engine = app.state.engine
    at = datetime(2026, 12, 7, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    events = [
        Event(type="account.exported", at=at, customer_id=ana.id, details={"n": "é\n\u0001"}),
        Event(type="vendor.registered", at=at.replace(microsecond=0), vendor_id="v1"),
        Event(type="account.exported", at=utcnow(), customer_id=ana.id),
    ]
    with engine.begin() as conn:
        log.append(conn, events[:1])
        assert log.append(conn, events) == 1
    salt = _salt(engine, ana.id)
    with Session(engine) as session:
        stored = session.exec(select(AuditEntry).order_by(col(AuditEntry.idx))).all()
    assert [e.idx for e in stored] == [0, 1, 2, 3]
    for entry, event in zip(stored[1:], events, strict=True):
        named = salt if event.customer_id is not None else None
        assert entry.body == entries.body(event, named)
        assert entry.leaf_hash == leaf_hash(entry.body)
        assert entry.at == event.at
        assert entry.type == event.type
        assert entry.customer == (entries.pseudonym(salt) if named else None)
        assert entry.vendor_id == event.vendor_id


def test_entries_are_canonical_json_a_verifier_can_recompute() -> None:
    body = entries.body(
        Event(
            type="data.read",
            at=utcnow(),
            vendor_id="v",
            details={"fields": ["profile.email"], "zeta": "é", "alpha": 1},
        ),
        None,
    )
    value = json.loads(body)
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert body == again.encode()
    assert list(value) == sorted(value)
    assert entries.parse(body) == value
    for bad in (
        body.replace(b'"alpha":1', b'"alpha":1.0'),
        body.replace(b",", b", ", 1),
        b'{"v":2' + body[6:],
        b"[]",
        b"\xff",
    ):
        with pytest.raises(entries.EntryError):
            entries.parse(bad)
    with pytest.raises(entries.EntryError, match="float"):
        entries.body(Event(type="data.read", at=utcnow(), details={"x": 0.5}), None)
    with pytest.raises(entries.EntryError, match="unknown entry type"):
        entries.body(Event(type="data.wiped", at=utcnow()), None)
    with pytest.raises(entries.EntryError, match="replace"):
        entries.body(Event(type="data.read", at=utcnow(), details={"type": "x"}), None)
    with pytest.raises(entries.EntryError, match="salt"):
        entries.body(Event(type="data.read", at=utcnow(), customer_id="c"), None)


@given(st.datetimes(timezones=st.timezones()))
@hypothesis_settings(max_examples=300)
def test_an_entrys_time_is_written_as_strftime_writes_it(at: datetime) -> None:
    # Near datetime's ends a time zone's offset can take it out of range.
    assume(datetime.min.replace(tzinfo=UTC) + timedelta(days=1) < at)
    assume(at < datetime.max.replace(tzinfo=UTC) - timedelta(days=1))
    expected = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert entries.timestamp(at) == expected


def test_a_commitment_opens_only_with_its_salt_and_values() -> None:
    salt = bytes(range(32))
    personal = {"customer_id": "c1", "subject": "s1"}
    committed = entries.commitment(salt, personal)
    assert committed == hashlib.sha256(salt + b'{"customer_id":"c1","subject":"s1"}').hexdigest()
    assert entries.commitment(bytes(32), personal) != committed
    assert entries.commitment(salt, {**personal, "subject": "s2"}) != committed
    assert entries.pseudonym(salt) != entries.pseudonym(bytes(32))


# Server custody: a rotation rewraps the root keys the key store holds,
# and a customer-held one never is there.
@pytest.mark.parametrize("custody_of_keys", ["server"])
def test_a_key_rotation_logs_each_customers_rewrap(
    app: FastAPI, settings: Settings, ana: Person, bob: Person
) -> None:
    ran = vrm(settings, "keys", "rotate", "--grace", "0")
    assert ran.returncode == 0, ran.stderr
    rotated = [e for e in _entries(app.state.engine) if e["type"] == "key.rotated"]
    salts = {_salt(app.state.engine, p.id) for p in (ana, bob)}
    assert sorted(e["customer"] for e in rotated) == sorted(entries.pseudonym(s) for s in salts)
    # Each account's data keys (vrm.catalogue.DATA_KEYS).
    assert {(e["root_version"], e["data_keys"]) for e in rotated} == {(2, len(DATA_KEYS))}
    # In the customer's own log and export too.
    r = ana.client.get("/api/v1/me/access-log", params={"type": "key"})
    assert [i["entry"]["type"] for i in r.json()["items"]] == ["key.rotated"]
    assert exported(ana.client).json()["audit_log"][0]["entry"]["type"] == "key.rotated"


@hypothesis_settings(max_examples=300, deadline=None, database=None)
@given(
    st.dictionaries(
        st.text(st.characters(max_codepoint=127), max_size=8),
        st.one_of(
            st.text(),
            st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
            st.booleans(),
            st.none(),
            st.lists(st.text(), max_size=3),
        ),
        max_size=6,
    )
)
def test_canonical_entries_are_what_the_standard_library_writes(value: dict[str, Any]) -> None:
    """The entries' bytes are RFC 8785's for what they hold: the standard
    library's sorted, compact, unescaped JSON gives the same bytes, so a
    verifier elsewhere can re-encode with its own library."""
    again = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entries.canonical(value) == again.encode()


_REVOKE_THEN_HANG = """
import sys, time
from sqlmodel import Session
from consent.grants.models import Grant
from consent.grants import revocation
from vrm.db import make_engine
from vrm.keys.server import open_key_store
from vrm.keys.service import Vault
from vrm.settings import Settings

settings = Settings()
engine = make_engine(settings)
vault = Vault(open_key_store(settings))
with Session(engine) as session:
    grant = session.get(Grant, sys.argv[1])
    revocation.revoke(session, vault, grant, by="customer")
    session.flush()
    print("written, not committed", flush=True)
    time.sleep(120)
"""


def test_a_crash_between_the_change_and_its_commit_leaves_neither(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "profile.email:read")
    grant_id = ana.client.get("/api/v1/me/grants").json()["items"][0]["id"]
    engine: Engine = app.state.engine
    with engine.connect() as conn:
        size = log.size(conn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env["VRM_DATA_DIR"] = str(settings.data_dir)
    if not settings.is_sqlite:
        env["VRM_DATABASE_URL"] = settings.database_url
    child = subprocess.Popen(
        [sys.executable, "-c", _REVOKE_THEN_HANG, grant_id],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "written, not committed\n"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with Session(engine) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        assert grant.revoked_at is None
    with engine.connect() as conn:
        assert log.size(conn) == size
    assert [e["type"] for e in _entries(engine)][-1] == "consent.granted"
    # The next change takes the next index: no gap where the crash was.
    r = ana.client.delete(f"/api/v1/me/grants/{grant_id}")
    assert r.status_code == 204, r.text
    assert [e["idx"] for e in _entries(engine)] == list(range(size + 1))
