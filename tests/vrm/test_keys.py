"""Key management: crypto-shredding, key files, rotation, the blind index.

The app here caches no unwrapped data key, so every read over HTTP unwraps
its data key from the database with a root key from the key store: a read
that succeeds after a rotation really used the rotated keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, col, create_engine, select

from tests.conftest import Person
from tests.kit import exported
from tests.vrm.test_export import comparable
from vrm.accounts.models import Customer
from vrm.catalogue import ACCOUNT, DATA_KEYS
from vrm.crypto.keystore import FileKeyStore, KeyMissing
from vrm.db import make_engine
from vrm.errors import KeyUnavailable
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.keys.pairwise import pairwise_event_id, pairwise_subject
from vrm.keys.service import RotationReport, Vault, wrap_aad
from vrm.records import sealing
from vrm.records.models import DocumentRecord
from vrm.settings import Settings

ME = "/api/v1/me"
READERS = 4
ROTATIONS = 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody: rotation, erasure and backups of root key files in
    # the key store, where only a server-held root key lies.
    return settings.model_copy(update={"key_cache_seconds": 0.0, "key_custody": "server"})


@dataclass
class Written:
    given_name: str
    diet: str
    vendor: str


def _write(person: Person) -> Written:
    written = Written(f"given{uuid.uuid4().hex}", f"diet{uuid.uuid4().hex}", uuid.uuid4().hex)
    r = person.client.put(f"{ME}/profile", json={"given_name": written.given_name})
    assert r.status_code == 200, r.text
    r = person.client.put(f"{ME}/preferences", json={"dietary": [written.diet]})
    assert r.status_code == 200, r.text
    r = person.client.post(
        f"{ME}/history",
        json={"vendor": written.vendor, "type": "visit", "occurred_at": "2024-05-01T10:00:00Z"},
    )
    assert r.status_code == 201, r.text
    return written


@pytest.fixture
def ana_data(ana: Person) -> Written:
    return _write(ana)


@pytest.fixture
def bob_data(bob: Person) -> Written:
    return _write(bob)


def _stable(body: dict[str, Any]) -> dict[str, Any]:
    body = comparable(body)
    # The tests log in again (after a restore, say): a new session is new.
    del body["sessions"]
    # The audit log grows with every export and rotation: that is its job
    # (tests/audit).
    del body["audit_log"]
    return body


# -- crypto-shredding ------------------------------------------------------


def _backup(app: FastAPI, settings: Settings, tmp_path: Path) -> Engine:
    """A copy of the whole database, as a backup taken now would hold it."""
    if settings.is_sqlite:
        # Fold the WAL into the main file, then copy the file like `cp` would.
        with app.state.engine.connect() as conn:
            busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
        assert busy == 0
        copy = tmp_path / "backup.db"
        shutil.copyfile(settings.data_dir / "vrm.db", copy)
        return create_engine(f"sqlite:///{copy}")
    # PostgreSQL: every row into memory, restored into a scratch database.
    # One in-memory database, shared by any thread that reads the backup.
    scratch = create_engine(
        "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    SQLModel.metadata.create_all(scratch)
    with app.state.engine.connect() as source, scratch.begin() as target:
        for table in SQLModel.metadata.sorted_tables:
            rows = [dict(row) for row in source.execute(table.select()).mappings()]
            if rows:
                target.execute(table.insert(), rows)
    return scratch


@dataclass
class SealedRecord:
    category: str
    record_id: str
    key_version: int
    ciphertext: bytes


def _sealed(session: Session, customer_id: str) -> list[SealedRecord]:
    """Every sealed record of the customer: login email, documents, events."""
    customer = session.get(Customer, customer_id)
    assert customer is not None
    found = [SealedRecord(ACCOUNT, customer_id, customer.key_version, customer.email_ct)]
    for doc in session.exec(
        select(DocumentRecord).where(col(DocumentRecord.customer_id) == customer_id)
    ):
        found.append(SealedRecord(doc.category, doc.category, doc.key_version, doc.ciphertext))
    for event in session.exec(
        select(HistoryRecord).where(col(HistoryRecord.customer_id) == customer_id)
    ):
        found.append(SealedRecord("history", event.id, event.key_version, event.ciphertext))
    assert sorted(r.category for r in found) == [ACCOUNT, "history", "preferences", "profile"]
    return found


def _open(session: Session, vault: Vault, customer_id: str, record: SealedRecord) -> bytes:
    if sealing.by_field(record.ciphertext):
        # A document: each field under its own key (vrm/records/sealing.py).
        return sealing.open_fields(
            session.connection(),
            vault,
            customer_id,
            record.category,
            record.key_version,
            record.ciphertext,
            None,
        )
    return vault.open(
        session,
        customer_id=customer_id,
        category=record.category,
        record_id=record.record_id,
        key_version=record.key_version,
        ciphertext=record.ciphertext,
    )


def _open_all(session: Session, vault: Vault, customer_id: str) -> dict[str, Any]:
    opened: dict[str, Any] = {}
    for record in _sealed(session, customer_id):
        plain = _open(session, vault, customer_id, record)
        opened[record.category] = (
            plain.decode() if record.category == ACCOUNT else json.loads(plain)
        )
    return opened


def _fresh_vault(settings: Settings) -> Vault:
    # A new key store object each time: nothing cached from earlier reads.
    return Vault(FileKeyStore(settings.key_dir_resolved), cache_seconds=0)


def _shows(opened: dict[str, Any], person: Person, written: Written) -> bool:
    return (
        opened[ACCOUNT] == person.email
        and opened["profile"]["given_name"] == written.given_name
        and opened["preferences"]["dietary"] == [written.diet]
        and opened["history"]["vendor"] == written.vendor
    )


def _delete_account(person: Person) -> None:
    r = person.client.request("DELETE", ME, json={"password": person.password})
    assert r.status_code == 204, r.text


def test_backup_taken_before_erasure_no_longer_opens_for_the_erased_customer(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    ana: Person,
    ana_data: Written,
    bob: Person,
    bob_data: Written,
) -> None:
    backup = _backup(app, settings, tmp_path)
    with Session(backup) as session:
        # Until the erasure, the backup opens for both.
        assert _shows(_open_all(session, _fresh_vault(settings), ana.id), ana, ana_data)

    _delete_account(ana)

    vault = _fresh_vault(settings)
    with Session(backup) as session:
        # Every one of ana's records is shut, not only the first one tried.
        for record in _sealed(session, ana.id):
            with pytest.raises(KeyUnavailable):
                _open(session, vault, ana.id, record)
        # Bob's records in the very same copy open with the same key store.
        assert _shows(_open_all(session, vault, bob.id), bob, bob_data)
    backup.dispose()


def test_erased_customers_data_keys_in_a_backup_no_longer_unwrap(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    ana: Person,
    ana_data: Written,
    bob: Person,
    bob_data: Written,
) -> None:
    backup = _backup(app, settings, tmp_path)
    _delete_account(ana)

    store = FileKeyStore(settings.key_dir_resolved)
    assert store.versions(ana.id) == []
    with Session(backup) as session:
        keys = session.exec(select(DataKey).order_by(col(DataKey.category))).all()
    backup.dispose()
    anas = [k for k in keys if k.customer_id == ana.id]
    bobs = [k for k in keys if k.customer_id == bob.id]
    assert sorted(k.category for k in anas) == sorted(DATA_KEYS)
    for key in anas:
        aad = wrap_aad(ana.id, key.category, key.version, key.root_version)
        with pytest.raises(KeyMissing):
            store.unwrap(ana.id, key.root_version, key.wrapped, aad)
    unwrapped = [
        store.unwrap(
            bob.id,
            k.root_version,
            k.wrapped,
            wrap_aad(bob.id, k.category, k.version, k.root_version),
        )
        for k in bobs
    ]
    assert [len(k) for k in unwrapped] == [32] * len(DATA_KEYS)


# -- key files -------------------------------------------------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_key_store_files_are_private_to_the_owner_whatever_the_umask(tmp_path: Path) -> None:
    old_umask = os.umask(0)
    try:
        store = FileKeyStore(tmp_path / "keys")
        store.init()
        store.create_root_key("c1")
        store.create_root_key("c1")
        store.create_server_key("blind-index")
    finally:
        os.umask(old_umask)
    root = tmp_path / "keys"
    folders = [root, root / "customers", root / "server", root / "customers" / "c1"]
    files = sorted(root.rglob("*.key"))
    assert [f.relative_to(root).as_posix() for f in files] == [
        "customers/c1/1.key",
        "customers/c1/2.key",
        "server/blind-index.key",
    ]
    assert {str(f.relative_to(root)): oct(_mode(f)) for f in folders + files} == {
        str(p.relative_to(root)): oct(0o700 if p.is_dir() else 0o600) for p in folders + files
    }


def _wait_for(condition: Callable[[], bool]) -> None:
    # A generous bound so a broken reader fails the test instead of hanging it.
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "readers stopped making progress"
        time.sleep(0.005)


# -- rotation --------------------------------------------------------------


def _data_keys(app: FastAPI) -> dict[tuple[str, str], tuple[int, bytes]]:
    with Session(app.state.engine) as session:
        rows = session.exec(select(DataKey)).all()
    return {(k.customer_id, k.category): (k.root_version, k.wrapped) for k in rows}


def _root_key_files(settings: Settings, customer_id: str) -> list[str]:
    folder = settings.key_dir_resolved / "customers" / customer_id
    return sorted(p.name for p in folder.iterdir())


def _assert_rotated_once(
    app: FastAPI, settings: Settings, before: dict[tuple[str, str], tuple[int, bytes]]
) -> None:
    after = _data_keys(app)
    assert after.keys() == before.keys()
    assert {v[0] for v in before.values()} == {1}
    assert {v[0] for v in after.values()} == {2}
    assert [k for k in after if after[k][1] == before[k][1]] == []
    for customer_id in {c for c, _ in after}:
        assert _root_key_files(settings, customer_id) == ["2.key"]


def test_rotation_rewraps_every_data_key_and_destroys_the_old_root_keys(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    ana_data: Written,
    bob: Person,
    bob_data: Written,
) -> None:
    exports = {p.id: _stable(exported(p.client).json()) for p in (ana, bob)}
    before = _data_keys(app)
    assert _root_key_files(settings, ana.id) == ["1.key"]

    with Session(app.state.engine) as session:
        report = _fresh_vault(settings).rotate(session, grace_seconds=0)

    assert report == RotationReport(customers=2, data_keys=2 * len(DATA_KEYS), retired_versions=2)
    _assert_rotated_once(app, settings, before)
    # Served from the rewrapped keys: this app caches no data key.
    assert {p.id: _stable(exported(p.client).json()) for p in (ana, bob)} == exports


def test_reads_keep_succeeding_while_another_process_rotates_the_keys(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    ana_data: Written,
    bob: Person,
    bob_data: Written,
) -> None:
    people = [ana, bob]
    expected = {p.id: _stable(exported(p.client).json()) for p in people}
    stop = threading.Event()
    lock = threading.Lock()
    reads: dict[int, int] = {}
    failures: list[str] = []

    def read(n: int, person: Person) -> None:
        reader = TestClient(app, cookies=person.client.cookies)
        while not stop.is_set():
            r = reader.get(f"{ME}/export")
            body = _stable(r.json()) if r.status_code == 200 else None
            with lock:
                reads[n] = reads.get(n, 0) + 1
                if r.status_code != 200 or body != expected[person.id]:
                    failures.append(f"{r.status_code} {r.text[:200]}")
        reader.close()

    def rotate() -> None:
        # Like `vrm keys rotate`: its own engine, key store object and vault.
        engine = make_engine(settings)
        try:
            for _ in range(ROTATIONS):
                with Session(engine) as session:
                    # Longer than any export these readers run.
                    _fresh_vault(settings).rotate(session, grace_seconds=0.5)
        finally:
            engine.dispose()

    readers = [threading.Thread(target=read, args=(n, people[n % 2])) for n in range(READERS)]
    for t in readers:
        t.start()
    _wait_for(lambda: len(reads) == READERS)
    rotator = threading.Thread(target=rotate)
    rotator.start()
    rotator.join()
    # Every reader reads some more after the last rotation.
    seen = dict(reads)
    _wait_for(lambda: all(reads[n] >= seen[n] + 2 for n in seen))
    stop.set()
    for t in readers:
        t.join()

    assert failures == []
    assert {v[0] for v in _data_keys(app).values()} == {1 + ROTATIONS}
    assert _root_key_files(settings, ana.id) == [f"{1 + ROTATIONS}.key"]


def test_vrm_keys_rotate_command_rewraps_the_keys_of_a_serving_store(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    ana_data: Written,
    bob: Person,
    bob_data: Written,
) -> None:
    exports = {p.id: _stable(exported(p.client).json()) for p in (ana, bob)}
    before = _data_keys(app)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env["VRM_DATA_DIR"] = str(settings.data_dir)
    if not settings.is_sqlite:
        env["VRM_DATABASE_URL"] = settings.database_url

    done = subprocess.run(
        [str(Path(sys.executable).parent / "vrm"), "keys", "rotate", "--grace", "0.5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert " ".join(done.stdout.split()) == (
        f"rotated: 2 customers, {2 * len(DATA_KEYS)} data keys rewrapped, 2 old root key "
        "versions destroyed"
    )
    _assert_rotated_once(app, settings, before)
    assert {p.id: _stable(exported(p.client).json()) for p in (ana, bob)} == exports


# -- blind index -----------------------------------------------------------


def test_email_blind_index_is_the_same_for_every_case_of_the_address(
    app: FastAPI, ana: Person
) -> None:
    vault: Vault = app.state.vault
    forms = ["ana@example.org", "ANA@EXAMPLE.ORG", "Ana@Example.Org", " ana@example.org "]
    assert len({vault.blind_index("email", f) for f in forms}) == 1
    assert vault.blind_index("email", "ana@example.org") != vault.blind_index(
        "email", "anna@example.org"
    )
    with Session(app.state.engine) as session:
        customer = session.get(Customer, ana.id)
    assert customer is not None
    assert customer.email_index == vault.blind_index("email", "ANA@Example.ORG")


def test_log_in_with_the_email_in_another_case_finds_the_account(
    client: TestClient, ana: Person
) -> None:
    r = client.post("/api/v1/session", json={"email": ana.email.upper(), "password": ana.password})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ana.id


def test_email_index_column_is_a_keyed_32_byte_hmac_not_a_plain_hash(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    with Session(app.state.engine) as session:
        customer = session.get(Customer, ana.id)
    assert customer is not None
    index = customer.email_index
    assert len(index) == 32
    unkeyed = [
        hashlib.sha256(message).digest()
        for message in (
            ana.email.encode(),
            ana.email.upper().encode(),
            b"email\0" + ana.email.encode(),
        )
    ]
    assert index not in unkeyed
    # It is the HMAC under the server's blind-index key, which lives in the
    # key store, not in the database.
    key = FileKeyStore(settings.key_dir_resolved).server_key("blind-index")
    assert index == hmac.new(key, b"email\0" + ana.email.encode(), hashlib.sha256).digest()


def test_pairwise_ids_are_the_keyed_hmacs_vendors_already_hold(
    app: FastAPI, settings: Settings
) -> None:
    # Vendors keep these ids: however they are computed, they must stay
    # the HMAC-SHA256 under the server's pairwise keys, base64url without
    # padding, 32 bytes of it for a subject and 18 for an event id.
    keys = FileKeyStore(settings.key_dir_resolved)
    vault = app.state.vault

    def expected(key_name: str, message: bytes, size: int) -> str:
        mac = hmac.new(keys.server_key(key_name), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:size]).rstrip(b"=").decode()

    for vendor_id, value in [("vendor-a", "customer-1"), ("vendor-b", "customer-1"), ("v", "ü")]:
        message = f"{vendor_id}\0{value}".encode()
        subject = pairwise_subject(vault, vendor_id, value)
        event_id = pairwise_event_id(vault, vendor_id, value)
        assert subject == expected("pairwise-subject", message, 32)
        assert event_id == expected("pairwise-event", message, 18)
        assert (len(subject), len(event_id)) == (43, 24)
    assert pairwise_subject(vault, "vendor-a", "c") != pairwise_subject(vault, "vendor-b", "c")
