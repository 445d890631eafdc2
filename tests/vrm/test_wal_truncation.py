"""After an erasure the SQLite WAL is cut to nothing, also when a reader
holds an older snapshot for a while (vrm.db.scrub_wal)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from vrm import db
from vrm.db import make_engine, scrub_wal, start_checkpoints, truncate_wal
from vrm.settings import Settings

SECRET = b"erin-3f9c-who-was-erased"
WARNING = (
    "SQLite WAL not truncated 0 s after an erasure: a reader holds an older snapshot; "
    "erased rows stay in the WAL file until a truncation succeeds"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def engine(data_dir: Path) -> Iterator[Engine]:
    engine = make_engine(Settings(data_dir=data_dir))
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE person (id INTEGER PRIMARY KEY, name BLOB)")
        conn.exec_driver_sql("INSERT INTO person (name) VALUES (?)", (SECRET,))
    yield engine
    engine.dispose()


@pytest.fixture
def reader(data_dir: Path, engine: Engine) -> Iterator[sqlite3.Connection]:
    """A connection in a read transaction: it holds its snapshot until
    the test closes it."""
    conn = sqlite3.connect(data_dir / "vrm.db", isolation_level=None)
    conn.execute("BEGIN")
    assert conn.execute("SELECT count(*) FROM person").fetchone() == (1,)
    yield conn
    conn.close()


def _erase(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM person")


def _wal(data_dir: Path) -> bytes:
    return (data_dir / "vrm.db-wal").read_bytes()


def test_deleted_rows_are_zeroed_in_the_database_file(data_dir: Path, engine: Engine) -> None:
    _erase(engine)
    assert truncate_wal(engine) is True
    assert _wal(data_dir) == b""
    assert SECRET not in (data_dir / "vrm.db").read_bytes()


def test_a_reader_on_an_older_snapshot_keeps_the_wal_until_it_is_done(
    data_dir: Path, engine: Engine, reader: sqlite3.Connection
) -> None:
    _erase(engine)
    assert truncate_wal(engine) is False
    assert SECRET in _wal(data_dir)

    reader.close()
    assert truncate_wal(engine) is True
    assert _wal(data_dir) == b""


def test_a_command_gives_up_with_a_warning_while_the_reader_stays(
    data_dir: Path,
    engine: Engine,
    reader: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(db, "TRUNCATE_WARN_AFTER_SECONDS", 0.0)
    _erase(engine)
    with caplog.at_level("WARNING", logger="vrm.db"):
        scrub_wal(engine)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", WARNING)]
    assert SECRET in _wal(data_dir)


def test_the_checkpoint_thread_truncates_once_the_reader_is_done(
    data_dir: Path,
    engine: Engine,
    reader: sqlite3.Connection,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(db, "TRUNCATE_WARN_AFTER_SECONDS", 0.0)
    checkpoints = start_checkpoints(engine)
    assert checkpoints is not None
    try:
        _erase(engine)
        with caplog.at_level("WARNING", logger="vrm.db"):
            scrub_wal(engine)  # returns at once: the thread does it
            time.sleep(1.0)  # four ticks, each one failed attempt
        assert SECRET in _wal(data_dir)
        # Warned once, not at every attempt.
        assert [r.getMessage() for r in caplog.records] == [WARNING]

        reader.close()
        deadline = time.monotonic() + 5
        while _wal(data_dir) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _wal(data_dir) == b""
    finally:
        checkpoints.stop()
