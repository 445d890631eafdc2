"""What the connector remembers, in a SQLite file of its own in its state
folder (``state.db``, mode 0600): the notices it applied (by ``jti``, so a
replay purges nothing), and its counts for ``vrm-connector status``.

Names subjects only (pairwise, the store's name for the vendor's
customer), never a customer's data.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connectors.notices import Notice

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notice (
    jti TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    reason TEXT NOT NULL,
    fields TEXT NOT NULL,
    received_at REAL NOT NULL,
    purged_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counter (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS setting (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class State:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = folder / "state.db"
        if not self.path.exists():
            self.path.touch(mode=0o600)
        os.chmod(self.path, 0o600)
        self._lock = threading.Lock()
        with self._connection() as conn:
            conn.executescript(_SCHEMA)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            yield conn
        finally:
            conn.close()

    def applied(self, jti: str) -> bool:
        """True if the notice ``jti`` was applied before."""
        with self._connection() as conn:
            found = conn.execute("SELECT 1 FROM notice WHERE jti = ?", (jti,)).fetchone()
        return found is not None

    def record_purge(self, notice: Notice, received_at: float, *, purged: bool = True) -> bool:
        """Record that the notice was applied (``purged``: its deletion
        done, not only noted); False if it already was."""
        with self._lock, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT INTO notice VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        notice.jti,
                        notice.subject,
                        notice.grant_id,
                        notice.reason,
                        json.dumps(notice.fields),
                        received_at,
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                return False
            _add(conn, "notices_purged" if purged else "notices_noted", 1)
            conn.execute("COMMIT")
        return True

    def count(self, name: str, by: int = 1) -> None:
        with self._lock, self._connection() as conn:
            _add(conn, name, by)

    def counts(self) -> dict[str, int]:
        with self._connection() as conn:
            return dict(conn.execute("SELECT name, value FROM counter").fetchall())

    def notices(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT jti, subject, grant_id, reason, fields, received_at, purged_at "
                "FROM notice ORDER BY purged_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        names = ("jti", "subject", "grant_id", "reason", "fields", "received_at", "purged_at")
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            item["fields"] = json.loads(item["fields"])
            out.append(item)
        return out

    def get(self, name: str) -> str | None:
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM setting WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, name: str, value: str) -> None:
        with self._lock, self._connection() as conn:
            conn.execute(
                "INSERT INTO setting VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )


def _add(conn: sqlite3.Connection, name: str, by: int) -> None:
    conn.execute(
        "INSERT INTO counter VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
        (name, by, by),
    )
