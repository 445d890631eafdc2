"""`vrm backup create` and `vrm backup restore`: the database and the key
store come back together, and an erasure made after the backup survives the
restore (the erasure journal, vrm/backup/journal.py)."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, create_engine, select
from typer.testing import CliRunner

from tests.conftest import Person, sign_up_and_log_in
from tests.kit import exported
from tests.vrm.test_keys import _delete_account, _open_all, _stable, _write
from vrm import cli, hooks
from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.app import create_app
from vrm.backup import archive, database
from vrm.backup.journal import ErasureJournal
from vrm.backup.sealing import BackupError, new_key, parse_key
from vrm.crypto.keystore import FileKeyStore
from vrm.errors import KeyUnavailable
from vrm.keys.models import DataKey
from vrm.keys.service import Vault
from vrm.settings import Settings
from vrm.storage import groupcommit

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody: what a backup and its restore do with root key files
    # in the key store, where only a server-held root key lies.
    return settings.model_copy(update={"key_custody": "server"})


@pytest.fixture
def backup_key() -> str:
    return new_key()


def vrm(settings: Settings, *args: str, key: str, **env: str) -> Result:
    """Run the `vrm` command on the test's store, as an operator would."""
    environment = {
        "VRM_DATA_DIR": str(settings.data_dir),
        "VRM_DATABASE_URL": settings.database_url,
        "VRM_KEY_CUSTODY": settings.key_custody,
        "VRM_BACKUP_KEY": key,
        **env,
    }
    return CliRunner().invoke(cli.app, list(args), env=environment)


def _created(result: Result, folder: Path, customers: int, root_keys: int | None = None) -> None:
    """``root_keys``: how many the key store holds; by default one for each
    customer (server-held)."""
    keys = customers if root_keys is None else root_keys
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"backup written to {folder}: {customers} customers, {keys} root keys\n"
    )
    assert result.stderr == ""


def _failed(result: Result, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr == f"vrm: {message}\n"


@pytest.fixture
def restarted(settings: Settings) -> Iterator[FastAPI]:
    """Call it after the restore: a server started on the restored store."""
    app = create_app(settings)
    yield app
    groupcommit.close(app.state)
    app.state.engine.dispose()


def _log_in_status(app: FastAPI, person: Person) -> int:
    with TestClient(app) as c:
        r = c.post("/api/v1/session", json={"email": person.email, "password": person.password})
        return r.status_code


def _stop(app: FastAPI) -> None:
    # The operator stops the servers before a restore.
    groupcommit.close(app.state)
    app.state.engine.dispose()


def test_customer_erased_after_the_backup_stays_erased_after_the_restore(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    backup_key: str,
    ana: Person,
    bob: Person,
    request: pytest.FixtureRequest,
) -> None:
    _write(ana)
    _write(bob)
    bob_then = _stable(exported(bob.client).json())
    folder = tmp_path / "backup"
    _created(vrm(settings, "backup", "create", str(folder), key=backup_key), folder, 2)

    _delete_account(ana)
    assert ErasureJournal.of(settings).customer_ids() == {ana.id}
    _write(bob)  # lost by the restore, as everything after the backup
    carol = sign_up_and_log_in(app, "carol@example.org")
    _stop(app)

    result = vrm(settings, "backup", "restore", str(folder), "--force", key=backup_key)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    created_at = archive.read_manifest(folder)[0]["created_at"]
    assert result.stdout == (
        f"restored the backup of {created_at}; 1 customers erased again from the journal\n"
    )

    server = request.getfixturevalue("restarted")
    assert _log_in_status(server, ana) == 401
    assert _log_in_status(server, carol) == 401
    bob.client.close()
    bob.client = TestClient(server)
    r = bob.client.post("/api/v1/session", json={"email": bob.email, "password": bob.password})
    assert r.status_code == 200, r.text
    assert _stable(exported(bob.client).json()) == bob_then
    with Session(server.state.engine) as session:
        assert session.exec(select(Customer.id)).all() == [bob.id]
        keyed = session.exec(select(DataKey.customer_id).distinct()).all()
        assert keyed == [bob.id]
    store = FileKeyStore(settings.key_dir_resolved)
    assert store.versions(ana.id) == []
    assert store.versions(bob.id) == [1]


@SQLITE_ONLY
def test_the_backups_copy_of_an_erased_customer_no_longer_opens_after_the_restore(
    app: FastAPI, settings: Settings, tmp_path: Path, backup_key: str, ana: Person, bob: Person
) -> None:
    _write(ana)
    _write(bob)
    folder = tmp_path / "backup"
    _created(vrm(settings, "backup", "create", str(folder), key=backup_key), folder, 2)
    _delete_account(ana)
    _stop(app)
    result = vrm(settings, "backup", "restore", str(folder), "--force", key=backup_key)
    assert result.exit_code == 0, result.output

    # The backup still holds ana's sealed records; the restored key store
    # cannot open them, and opens bob's.
    _, digest = archive.read_manifest(folder)
    copy = tmp_path / "copy.db"
    archive.open_file(parse_key(backup_key), folder, "database.sealed", digest, copy)
    vault = Vault(FileKeyStore(settings.key_dir_resolved), cache_seconds=0)
    engine = create_engine(f"sqlite:///{copy}")
    with Session(engine) as session:
        with pytest.raises(KeyUnavailable):
            _open_all(session, vault, ana.id)
        assert _open_all(session, vault, bob.id)["account"] == bob.email
    engine.dispose()


# -- failure paths ---------------------------------------------------------


@pytest.fixture
def backed_up(
    app: FastAPI, settings: Settings, tmp_path: Path, backup_key: str, ana: Person
) -> Path:
    """A backup of ana's store, then a customer the backup does not hold."""
    _write(ana)
    folder = tmp_path / "backup"
    _created(vrm(settings, "backup", "create", str(folder), key=backup_key), folder, 1)
    sign_up_and_log_in(app, "carol@example.org").client.close()
    return folder


def _store_state(settings: Settings, ana: Person) -> dict[str, Any]:
    files = sorted(
        str(p.relative_to(settings.key_dir_resolved)) for p in settings.key_dir_resolved.rglob("*")
    )
    return {"export": _stable(exported(ana.client).json()), "key files": files}


@SQLITE_ONLY
def test_restore_with_a_wrong_key_fails_and_leaves_the_store_as_it_was(
    settings: Settings, backed_up: Path, ana: Person
) -> None:
    _write(ana)
    before = _store_state(settings, ana)
    result = vrm(settings, "backup", "restore", str(backed_up), "--force", key=new_key())
    _failed(result, "wrong backup key: this backup was sealed with another one")
    assert _store_state(settings, ana) == before


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_manifest(folder: Path) -> None:
    path = folder / "manifest.json"
    path.write_text(path.read_text().replace('"customers": 1', '"customers": 2'))


def _other_backups_keys(folder: Path, settings: Settings, key: str) -> None:
    other = folder.parent / "other"
    _created(vrm(settings, "backup", "create", str(other), key=key), other, 2)
    (folder / "keys.sealed").write_bytes((other / "keys.sealed").read_bytes())


def _cut_last_chunk_off(folder: Path) -> None:
    (folder / "database.sealed").write_bytes(b"")


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("tamper", "damaged"),
    [
        (lambda folder, s, k: _flip_byte(folder / "database.sealed", 100), "database.sealed"),
        (lambda folder, s, k: _flip_byte(folder / "keys.sealed", 40), "keys.sealed"),
        (lambda folder, s, k: _edit_manifest(folder), "keys.sealed"),
        (_other_backups_keys, "keys.sealed"),
        (lambda folder, s, k: _cut_last_chunk_off(folder), "database.sealed"),
    ],
    ids=["database byte", "keys byte", "manifest", "keys of another backup", "truncated"],
)
def test_restore_of_a_tampered_backup_fails_and_leaves_the_store_as_it_was(
    settings: Settings, backed_up: Path, backup_key: str, ana: Person, tamper: Any, damaged: str
) -> None:
    tamper(backed_up, settings, backup_key)
    _write(ana)
    before = _store_state(settings, ana)
    result = vrm(settings, "backup", "restore", str(backed_up), "--force", key=backup_key)
    _failed(result, f"the backup is damaged or was altered: {damaged} failed its integrity check")
    assert _store_state(settings, ana) == before


def test_restore_over_a_store_that_holds_data_needs_force(
    settings: Settings, backed_up: Path, backup_key: str, ana: Person
) -> None:
    _write(ana)
    before = _store_state(settings, ana)
    result = vrm(settings, "backup", "restore", str(backed_up), key=backup_key)
    _failed(result, f"the store in {settings.data_dir} holds data: pass --force to replace it")
    assert _store_state(settings, ana) == before


@SQLITE_ONLY
def test_restore_on_a_new_machine_needs_the_journal_and_replays_it(
    app: FastAPI, settings: Settings, tmp_path: Path, backed_up: Path, backup_key: str, ana: Person
) -> None:
    _delete_account(ana)
    fresh = Settings(data_dir=tmp_path / "new-machine")
    journal = ErasureJournal.of(settings).path

    result = vrm(fresh, "backup", "restore", str(backed_up), key=backup_key)
    _failed(
        result,
        f"no erasure journal at {fresh.erasure_journal_resolved}: set VRM_ERASURE_JOURNAL "
        "to a copy of it, or pass --without-journal if it is truly lost (customers erased "
        "since the backup would come back)",
    )
    assert not fresh.data_dir.exists()

    result = vrm(
        fresh, "backup", "restore", str(backed_up), key=backup_key, VRM_ERASURE_JOURNAL=str(journal)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("; 1 customers erased again from the journal\n")
    engine = create_engine(f"sqlite:///{fresh.data_dir / 'vrm.db'}")
    with Session(engine) as session:
        assert session.exec(select(Customer.id).where(col(Customer.id) == ana.id)).all() == []
    engine.dispose()
    assert FileKeyStore(fresh.key_dir_resolved).versions(ana.id) == []


@SQLITE_ONLY
def test_restore_without_any_backup_key_is_refused(settings: Settings, backed_up: Path) -> None:
    result = vrm(settings, "backup", "restore", str(backed_up), "--force", key="")
    _failed(result, "the backup key must be 32 bytes in base64url, as `vrm backup new-key` prints")


# -- the journal -----------------------------------------------------------


@SQLITE_ONLY
def test_erasure_that_cannot_be_journaled_destroys_nothing(
    app: FastAPI, settings: Settings, tmp_path: Path, ana: Person
) -> None:
    _write(ana)
    before = _stable(exported(ana.client).json())
    # A journal that cannot be written: its path is a folder.
    blocker = tmp_path / "a-folder"
    blocker.mkdir()
    unjournaled = settings.model_copy(update={"erasure_journal": blocker})
    vault = Vault(FileKeyStore(settings.key_dir_resolved), cache_seconds=0)
    with Session(app.state.engine) as session, pytest.raises(IsADirectoryError):
        accounts.erase(
            session=session,
            vault=vault,
            settings=unjournaled,
            customer_id=ana.id,
            on_erase=hooks.ON_ERASE,
        )
    assert FileKeyStore(settings.key_dir_resolved).versions(ana.id) == [1]
    assert _stable(exported(ana.client).json()) == before


def test_journal_ignores_a_line_torn_by_a_crash_and_goes_on_after_it(tmp_path: Path) -> None:
    journal = ErasureJournal(tmp_path / "erasures.journal")
    journal.record("a1")
    with open(journal.path, "ab") as f:
        f.write(b"2026-12-06T10:00:00Z b2")  # the crash came before the newline
    assert journal.customer_ids() == {"a1"}
    journal.record("c3")
    assert journal.customer_ids() == {"a1", "c3"}
    lines = journal.path.read_text().splitlines()
    assert [line.split(" ")[1] for line in lines] == ["a1", "b2#torn", "c3"]
    assert journal.path.stat().st_mode & 0o777 == 0o600


# -- create ----------------------------------------------------------------


@SQLITE_ONLY
def test_backup_with_a_lost_root_key_is_made_and_says_so(
    settings: Settings, tmp_path: Path, backup_key: str, ana: Person, bob: Person
) -> None:
    shutil.rmtree(settings.key_dir_resolved / "customers" / bob.id)
    folder = tmp_path / "backup"
    result = vrm(settings, "backup", "create", str(folder), key=backup_key)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"backup written to {folder}: 2 customers, 1 root keys\n"
    assert result.stderr == (
        "vrm: warning: 1 root keys the database needs are missing from the key store; "
        "those customers' data cannot be read from this backup\n"
    )
    assert archive.read_manifest(folder)[0]["missing_root_keys"] == 1


@SQLITE_ONLY
def test_backup_into_a_folder_that_holds_files_is_refused(
    settings: Settings, tmp_path: Path, backup_key: str, ana: Person
) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    result = vrm(settings, "backup", "create", str(folder), key=backup_key)
    _failed(result, f"{folder} is not an empty folder: give a new one for each backup")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@SQLITE_ONLY
def test_backup_without_a_key_is_refused(settings: Settings, tmp_path: Path, ana: Person) -> None:
    folder = tmp_path / "backup"
    result = CliRunner().invoke(
        cli.app,
        ["backup", "create", str(folder)],
        env={"VRM_DATA_DIR": str(settings.data_dir), "VRM_BACKUP_KEY": None},
    )
    _failed(
        result, "no backup key: set VRM_BACKUP_KEY or pass --key-file (see `vrm backup new-key`)"
    )
    assert not folder.exists()


@SQLITE_ONLY
def test_backup_key_from_a_key_file_restores(
    app: FastAPI, settings: Settings, tmp_path: Path, ana: Person
) -> None:
    key_file = tmp_path / "backup.key"
    key_file.write_text(new_key() + "\n")
    folder = tmp_path / "backup"
    made = vrm(settings, "backup", "create", str(folder), "--key-file", str(key_file), key="")
    _created(made, folder, 1)
    _stop(app)
    result = vrm(
        settings, "backup", "restore", str(folder), "--force", "--key-file", str(key_file), key=""
    )
    assert result.exit_code == 0, result.output


@SQLITE_ONLY
def test_backup_taken_while_a_key_rotation_finishes_starts_again_and_restores_readable(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    backup_key: str,
    ana: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ana_then = _stable(exported(ana.client).json())
    real_dump = database.dump
    dumps: list[int] = []

    def dump_then_rotate(settings: Settings, target: Path) -> database.Snapshot:
        snapshot = real_dump(settings, target)
        if not dumps:
            # Between the database copy and the key store read: version 1,
            # which the copy needs, is destroyed.
            vault = Vault(FileKeyStore(settings.key_dir_resolved), cache_seconds=0)
            with Session(app.state.engine) as session:
                vault.rotate(session, grace_seconds=0)
        dumps.append(1)
        return snapshot

    monkeypatch.setattr(database, "dump", dump_then_rotate)
    folder = tmp_path / "backup"
    _created(vrm(settings, "backup", "create", str(folder), key=backup_key), folder, 1)
    assert len(dumps) == 2
    _stop(app)
    result = vrm(settings, "backup", "restore", str(folder), "--force", key=backup_key)
    assert result.exit_code == 0, result.output
    server = create_app(settings)
    try:
        ana.client.close()
        ana.client = TestClient(server)
        r = ana.client.post("/api/v1/session", json={"email": ana.email, "password": ana.password})
        assert r.status_code == 200, r.text
        assert _stable(exported(ana.client).json()) == ana_then
    finally:
        groupcommit.close(server.state)
        server.state.engine.dispose()


@SQLITE_ONLY
def test_customer_erased_while_the_backup_runs_is_erased_by_its_restore(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    backup_key: str,
    ana: Person,
    bob: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_dump = database.dump

    def dump_then_erase(settings: Settings, target: Path) -> database.Snapshot:
        snapshot = real_dump(settings, target)
        # Between the database copy (which holds ana) and the key store
        # read (which no longer does): the journal names her.
        _delete_account(ana)
        return snapshot

    monkeypatch.setattr(database, "dump", dump_then_erase)
    folder = tmp_path / "backup"
    made = vrm(settings, "backup", "create", str(folder), key=backup_key)
    assert made.exit_code == 0, made.output
    assert made.stdout == f"backup written to {folder}: 2 customers, 1 root keys\n"
    assert made.stderr == ""  # not a lost key: an erasure
    _stop(app)
    result = vrm(settings, "backup", "restore", str(folder), "--force", key=backup_key)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("; 1 customers erased again from the journal\n")
    engine = create_engine(f"sqlite:///{settings.data_dir / 'vrm.db'}")
    with Session(engine) as session:
        assert session.exec(select(Customer.id)).all() == [bob.id]
    engine.dispose()


def test_backup_under_concurrent_sign_ups_and_writes_restores_every_customer_readable(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    backup_key: str,
    request: pytest.FixtureRequest,
) -> None:
    stop = threading.Event()
    people: list[Person] = []

    def sign_up_and_write() -> None:
        while not stop.is_set():
            person = sign_up_and_log_in(app, f"w{len(people)}@example.org")
            _write(person)
            people.append(person)

    writer = threading.Thread(target=sign_up_and_write)
    writer.start()
    try:
        while len(people) < 2 and writer.is_alive():
            time.sleep(0.01)
        folder = tmp_path / "backup"
        made = vrm(settings, "backup", "create", str(folder), key=backup_key)
        during = len(people)
        while len(people) < during + 2 and writer.is_alive():
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
    assert len(people) >= during + 2  # the writer did not die
    assert made.exit_code == 0, made.output
    assert made.stderr == ""
    _stop(app)
    result = vrm(settings, "backup", "restore", str(folder), "--force", key=backup_key)
    assert result.exit_code == 0, result.output

    server = request.getfixturevalue("restarted")
    with Session(server.state.engine) as session:
        restored = set(session.exec(select(Customer.id)).all())
    known = {p.id: p for p in people}
    assert restored <= set(known)
    assert {p.id for p in people[:2]} <= restored
    assert people[-1].id not in restored
    for customer_id in restored:
        person = known[customer_id]
        with TestClient(server) as c:
            r = c.post("/api/v1/session", json={"email": person.email, "password": person.password})
            assert r.status_code == 200, r.text
            r = c.get("/api/v1/me/export")
            assert r.status_code == 200, r.text
            assert r.json()["account"]["email"] == person.email
    for person in people:
        person.client.close()


@SQLITE_ONLY
def test_restore_whose_database_load_fails_leaves_the_key_store_as_it_was(
    settings: Settings,
    backed_up: Path,
    backup_key: str,
    ana: Person,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(settings: Settings, source: Path) -> None:
        raise BackupError("psql failed: ERROR:  out of disk space")

    monkeypatch.setattr(database, "load", refuse)
    before = _store_state(settings, ana)
    result = vrm(settings, "backup", "restore", str(backed_up), "--force", key=backup_key)
    _failed(result, "psql failed: ERROR:  out of disk space")
    assert _store_state(settings, ana) == before
    assert sorted(p.name for p in settings.data_dir.iterdir()) == [
        "erasures.journal",
        "keys",
        "vrm.db",
        "vrm.db-shm",
        "vrm.db-wal",
    ]
