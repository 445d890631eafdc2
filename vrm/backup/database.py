"""A consistent copy of the database, and putting one back.

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the
database as of one moment while writers carry on, and copying back through
it replaces the live file in one transaction, WAL included.

PostgreSQL: ``pg_dump`` (plain SQL with ``--clean``), run in a snapshot
exported from a REPEATABLE READ transaction that also lists which root key
versions the dump's data keys need; restored by ``psql`` in a single
transaction, so a failed restore leaves the database as it was.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, inspect, literal, make_url, select
from sqlmodel import SQLModel

import vrm.models  # noqa: F401 - every table on the metadata
from vrm.backup.sealing import BackupError
from vrm.db import BUSY_TIMEOUT_SECONDS, make_engine
from vrm.settings import Settings

_KEY_REFS = "SELECT DISTINCT customer_id, root_version FROM data_key"
_REVISION = "SELECT version_num FROM alembic_version"
# Seeded by migrations, present in an empty store.
_SEEDED = {"feed_clock", "alembic_version"}


@dataclass
class Snapshot:
    kind: str  # "sqlite" or "postgresql"
    revision: str
    key_refs: set[tuple[str, int]]  # (customer id, root key version) the data keys need


def kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def _sqlite_path(settings: Settings) -> Path:
    return Path(make_url(settings.database_url_resolved).database or "")


def dump(settings: Settings, target: Path) -> Snapshot:
    """Copy the database into target (a file the caller made)."""
    if settings.is_sqlite:
        return _sqlite_dump(settings, target)
    return _pg_dump(settings, target)


def load(settings: Settings, source: Path) -> None:
    """Replace the database with the copy in source."""
    if settings.is_sqlite:
        path = _sqlite_path(settings)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Readable by the service user only, whatever the umask (a new file).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        with _closing(sqlite3.connect(source)) as src:
            with _closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as dst:
                src.backup(dst)
        return
    _run(
        "psql",
        ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--single-transaction"],
        ["--file", str(source)],
        settings,
    )


def holds_data(settings: Settings) -> bool:
    """Whether any table holds a row beyond what migrations seed."""
    if settings.is_sqlite and not _sqlite_path(settings).exists():
        return False
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            return _any_rows(conn)
    finally:
        engine.dispose()


def _any_rows(conn: Connection) -> bool:
    existing = set(inspect(conn).get_table_names())
    for table in SQLModel.metadata.sorted_tables:
        if table.name in existing and table.name not in _SEEDED:
            if conn.execute(select(literal(1)).select_from(table).limit(1)).first():
                return True
    return False


class _closing:
    """sqlite3 connections' own context manager commits but does not close."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()


def _sqlite_dump(settings: Settings, target: Path) -> Snapshot:
    path = _sqlite_path(settings)
    if not path.is_file():
        raise BackupError(f"no database at {path}: run `vrm init` first")
    with _closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)) as src:
        with _closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
            refs = {(str(c), int(v)) for c, v in dst.execute(_KEY_REFS)}
            (revision,) = dst.execute(_REVISION).fetchone()
    return Snapshot("sqlite", str(revision), refs)


def _pg_dump(settings: Settings, target: Path) -> Snapshot:
    engine = make_engine(settings)
    try:
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
            conn.begin(),
        ):
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            refs = {(str(c), int(v)) for c, v in conn.exec_driver_sql(_KEY_REFS)}
            revision = conn.exec_driver_sql(_REVISION).scalar_one()
            # The transaction stays open until pg_dump has its snapshot.
            _run(
                "pg_dump",
                [f"--snapshot={snapshot}", "--format=plain", "--clean", "--if-exists"],
                ["--no-owner", "--no-privileges", "--file", str(target)],
                settings,
            )
    finally:
        engine.dispose()
    return Snapshot("postgresql", str(revision), refs)


def _run(program: str, options: list[str], more: list[str], settings: Settings) -> None:
    """Run a PostgreSQL client on the configured database; the password goes
    in the environment (PGPASSWORD), never on the command line."""
    binary = shutil.which(program)
    if binary is None:
        raise BackupError(
            f"{program} is not on PATH: install PostgreSQL's client tools "
            "(the server's major version or newer)"
        )
    url = make_url(settings.database_url_resolved)
    conninfo = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    done = subprocess.run(  # noqa: S603 - a fixed program, arguments not from a shell
        [binary, *options, *more, f"--dbname={conninfo}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if done.returncode != 0:
        # Only the error line: psql's context lines can quote the dump's rows.
        errors = [
            line.strip()
            for line in done.stderr.decode(errors="replace").splitlines()
            if "error:" in line.lower()
        ]
        reason = errors[0][:300] if errors else f"exit status {done.returncode}"
        raise BackupError(f"{program} failed: {reason}")
