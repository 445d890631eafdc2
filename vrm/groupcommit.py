"""Group commit for the vendor endpoints that run in the event loop on SQLite.

The vendor reads (vrm/vendor_api/reads.py) and the client-credentials token
endpoint each write one row per request: an access event, a token. Committed
one by one, every row cost a commit and, on SQLite, every page it changed
(the table and each of its indexes, about 24 KB for an access event) written
to the WAL and later checkpointed, with fsyncs that stalled the event loop.
Here a request hands its row to a :class:`GroupCommit`; the rows of every
request answered in the same turn of the event loop are written in one
transaction at the end of that turn, and each request waits for that commit
before it answers, so nothing is sent that is not on disk first.

When another process holds SQLite's write lock, the group does not wait in
SQLite's busy handler (which sleeps, and would stop this process's event
loop): it tries again shortly, and requests answered meanwhile join it.
After ``give_up_after`` seconds of that (SQLite's own timeout here), its
requests fail.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from vrm.db import BUSY_TIMEOUT_SECONDS

# A row waiting to be written, and the request waiting for it.
_Pending = tuple[dict[str, Any], "asyncio.Future[None]"]
Write = Callable[[Connection, list[dict[str, Any]]], None]


class GroupCommit:
    """Rows of the requests answered in one turn of the event loop, written
    by ``write`` in one transaction at the end of the turn; each request
    waits for that commit before it answers."""

    RETRY_SECONDS = 0.0005

    def __init__(
        self, engine: Engine, write: Write, *, give_up_after: float = BUSY_TIMEOUT_SECONDS
    ) -> None:
        self.engine = engine
        self.write = write
        self.give_up_after = give_up_after
        self._pending: list[_Pending] = []
        self._scheduled = False
        self._busy_since: float | None = None
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def busy(self) -> bool:
        """Waiting for another process's write lock."""
        return self._busy_since is not None

    def record(self, row: dict[str, Any]) -> asyncio.Future[None]:
        """A future that is done once ``row`` is committed (or failed)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A worker has one event loop for its life; a new one (another
            # asyncio.run in the same process) starts a new group, since the
            # old loop will never run the old group's flush.
            self._loop, self._pending, self._scheduled, self._busy_since = loop, [], False, None
        done = loop.create_future()
        self._pending.append((row, done))
        if not self._scheduled:
            # After every callback already queued: the requests of this turn.
            self._scheduled = True
            loop.call_soon(self._flush)
        return done

    def _connection(self) -> Connection:
        # One connection of its own, used only from the event loop, that
        # never waits in SQLite's busy handler.
        if self._conn is None:
            conn = self.engine.connect()
            driver = conn.connection.driver_connection
            assert driver is not None  # noqa: S101 - a checked-out connection has one
            driver.execute("PRAGMA busy_timeout = 0")
            self._conn = conn
        return self._conn

    def _write(self, rows: list[dict[str, Any]]) -> None:
        conn = self._connection()
        try:
            self.write(conn, rows)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self) -> None:
        batch = self._pending
        loop = asyncio.get_running_loop()
        try:
            self._write([row for row, _ in batch])
        except OperationalError as exc:
            now = loop.time()
            if _is_busy(exc) and now - (self._busy_since or now) < self.give_up_after:
                self._busy_since = self._busy_since or now
                loop.call_later(self.RETRY_SECONDS, self._flush)
                return
            self._finish(batch, exc)
        except Exception as exc:  # every request of the group fails with it
            self._finish(batch, exc)
        else:
            self._finish(batch, None)

    def _finish(self, batch: list[_Pending], exc: Exception | None) -> None:
        self._pending = self._pending[len(batch) :]
        self._busy_since = None
        self._scheduled = False
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        for _, done in batch:
            if done.done():
                continue
            if exc is None:
                done.set_result(None)
            else:
                done.set_exception(exc)


def _is_busy(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


def writer(state: Any, name: str, engine: Engine, write: Write) -> GroupCommit:
    """The app's group commit called ``name``, made on first use."""
    groups: dict[str, GroupCommit] | None = getattr(state, "group_commits", None)
    if groups is None:
        groups = state.group_commits = {}
    found = groups.get(name)
    if found is None:
        found = groups[name] = GroupCommit(engine, write)
    return found


def close_all(state: Any) -> None:
    """At shutdown: the writers' connections go back before the engine is
    disposed."""
    for group in getattr(state, "group_commits", {}).values():
        group.close()
