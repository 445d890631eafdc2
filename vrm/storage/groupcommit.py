"""Group commit for the vendor endpoints.

The token, revocation and introspection endpoints and the vendor reads each
write to the database on every call: a token, a used refresh token, an
access event. Committed one by one, every request cost a commit and, on
SQLite, every page it changed (the table and each of its indexes) written to
the WAL and later checkpointed, with fsyncs that stalled the event loop.

Here a request hands its work (a function of a
:class:`~vrm.storage.transaction.Transaction`, and the tables it writes) to the group of
its event loop, a :class:`GroupCommit`. The work of the requests answered
meanwhile runs in one transaction, each request's part in a savepoint of its
own, on the group's one connection; each request gets its result once that
transaction is committed, so nothing is sent that is not on disk first (on
SQLite the commit fsyncs the WAL, ``synchronous=FULL`` in vrm/db.py; on
PostgreSQL the server flushes its WAL, with its default ``fsync`` and
``synchronous_commit``), and a group pays one fsync for all its requests. A
request's work sees what the requests before it in the group wrote, exactly
as if each had committed.

- On SQLite the group runs in the loop, two turns after its first request
  came (so that the requests that arrived meanwhile join it): the work is
  short, and cheaper than a hop to a thread (with the group in a thread,
  handing the GIL back and forth cost throughput). The commit's fsync holds
  the loop too, longer while other processes fsync
  (docs/performance.md#the-group-commit).
- On PostgreSQL it runs in a thread of the group's own, so the loop serves
  other requests while the work waits for the server; requests that come
  meanwhile make the next group. One thread rather than a threadpool: eight
  threads each running one request spent more CPU handing the GIL to each
  other than on the requests (docs/performance.md#the-group-commit).

Work runs its statements on ``transaction.conn`` and calls
:meth:`Savepoint.commit` where it would commit (a used
authorization code must stay used even if the request then fails) and
:meth:`Savepoint.rollback` to undo its part since then. If a request's work
raises, its part is rolled back and that request alone gets the exception;
if the commit fails, every request of the group does, and a group whose
connection broke starts the next one on a new connection.

One connection for all of it also keeps SQLite's page cache: a connection
empties its cache whenever another connection has written since its last
read, which made every token lookup read its pages afresh
(docs/performance.md#the-group-commit).

On SQLite nothing but the group writes while it runs (it holds the write
lock from its first statement), so a row of a table no work of the group
writes, such as the vendor each request authenticates, is read once per
group (:func:`steady_reads`). That rests on each work writing only the
tables it declared when it was submitted: a write to any other table raises
:class:`~vrm.storage.transaction.UndeclaredWrite` (checked by compiled
statements as they run, and by a ``before_cursor_execute`` listener on the
group's connection for anything else SQLAlchemy runs there).

When another process holds SQLite's write lock, the group does not wait in
SQLite's busy handler (which sleeps, and would stop this process's event
loop): it tries again shortly, and requests answered meanwhile join it.
After ``GroupCommit.GIVE_UP_AFTER`` seconds of that (SQLite's own timeout),
its requests fail.
"""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, Table, event
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.exc import OperationalError

from vrm.db import BUSY_TIMEOUT_SECONDS
from vrm.storage.transaction import WRITES, Transaction, check_write

T = TypeVar("T")


# Key, in the group connection's info, of the group's reads that hold for
# the whole group (steady_reads).
_STEADY = "vrm.storage.steady"
# Keys, in the group connection's info, of what the running work deferred
# to the group's end since its last commit, and of what the group keeps
# (defer).
_DEFERRED = "vrm.storage.deferred"
_KEPT = "vrm.storage.kept"

D = TypeVar("D")


def defer(conn: Connection, write: Callable[[Connection, list[D]], None], item: D) -> bool:
    """In a group: have ``write(conn, items)`` run once, just before the
    group commits, with the items every work of the group that succeeded
    deferred to it, in order (the audit log's entries: one statement for a
    group's instead of two for each request). True if deferred; False
    outside a group, where the caller writes now. A work that fails takes
    its items back with the rest of its part; a ``write`` that fails fails
    the whole group, as its commit would."""
    pending: dict[Any, list[Any]] | None = conn.info.get(_DEFERRED)
    if pending is None:
        return False
    pending.setdefault(write, []).append(item)
    return True


class _Steady:
    __slots__ = ("written", "rows")

    def __init__(self, written: frozenset[Table]) -> None:
        self.written = written  # every table the group's work declared
        self.rows: dict[Any, Any] = {}


def steady_reads(conn: Connection, table: Table) -> dict[Any, Any] | None:
    """A dict for rows of ``table`` read in a group, which nothing can
    change before the group commits; None outside a group, on PostgreSQL,
    and when some work of the group declared it writes ``table``.

    On SQLite a group holds the write lock from its first statement, so no
    other connection writes until it commits, and its work writes only the
    tables it declared (tokens, codes, assertions, access events): a vendor
    read by one request of the group (to authenticate it) is the same row
    for the next, and need not be read again. On PostgreSQL other
    connections commit while a group runs, and every request reads afresh."""
    steady: _Steady | None = conn.info.get(_STEADY)
    if steady is None or table in steady.written:
        return None
    return steady.rows


class Savepoint(Transaction):
    """One request's part of the group's transaction.

    Savepoints nest: each request, and each of its commits, opens one more,
    and rolling back goes back to the latest. None is released; the group's
    COMMIT ends them all. (Releasing and reopening cost two statements per
    commit instead of one.)"""

    __slots__ = ("_conn", "_cursor")

    def __init__(self, conn: Connection, cursor: Any) -> None:
        self._conn = conn
        # A cursor of the group's, used for savepoints only (a new one per
        # statement costs psycopg more: docs/performance.md#the-group-commit).
        self._cursor = cursor
        cursor.execute("SAVEPOINT request")

    @property
    def conn(self) -> Connection:
        return self._conn

    def commit(self) -> None:
        """Keep what the work wrote so far, whatever happens to it next
        (the group's commit still decides whether it reaches the disk)."""
        self._cursor.execute("SAVEPOINT request")
        _keep(self._conn.info)

    def rollback(self) -> None:
        """Undo what the work wrote since it began or last committed."""
        self._cursor.execute("ROLLBACK TO request")
        self._conn.info[_DEFERRED] = {}


def _keep(info: dict[Any, Any]) -> None:
    """What the work deferred so far is the group's now."""
    kept: dict[Any, list[Any]] = info[_KEPT]
    for write, items in info[_DEFERRED].items():
        kept.setdefault(write, []).extend(items)
    info[_DEFERRED] = {}


Work = Callable[[Transaction], T]


class _Job(Generic[T]):
    __slots__ = ("work", "writes", "context", "done", "result", "error")

    def __init__(self, writes: frozenset[Table], work: Work[T], done: asyncio.Future[T]) -> None:
        self.work = work
        self.writes = writes
        # Run in the context of the request that handed it in, not in that
        # of the request whose turn scheduled the flush.
        self.context = contextvars.copy_context()
        self.done = done
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """The work of the requests answered together (those that came within
    two turns of the event loop, and on a server also while the group before
    ran), run in one transaction; each request gets its result once that
    transaction is committed."""

    RETRY_SECONDS = 0.0005
    GIVE_UP_AFTER = BUSY_TIMEOUT_SECONDS

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        # Against a database server the work waits for round trips, which
        # the event loop should spend on other requests: it runs in one
        # thread of the group's own.
        self._thread = (
            None if self._sqlite else ThreadPoolExecutor(1, thread_name_prefix="group-commit")
        )
        self._pending: list[_Job[Any]] = []
        self._scheduled = False
        self._waited = False
        self._busy_since: float | None = None
        self._conn: Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def busy(self) -> bool:
        """Waiting for another process's write lock."""
        return self._busy_since is not None

    def run(self, writes: frozenset[Table], work: Work[T]) -> asyncio.Future[T]:
        """A future for what ``work(transaction)`` returns (or raises), set
        once the group's transaction is committed. ``work`` writes only the
        tables in ``writes``: any other write raises
        :class:`~vrm.storage.transaction.UndeclaredWrite`."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A worker has one event loop for its life; a new one (another
            # asyncio.run in the same process) starts a new group, since the
            # old loop will never run the old group's flush.
            self._loop, self._pending, self._scheduled, self._busy_since = loop, [], False, None
            self._waited = False
        done: asyncio.Future[T] = loop.create_future()
        self._pending.append(_Job(writes, work, done))
        if not self._scheduled:
            # After every callback already queued: the requests of this turn.
            self._scheduled = True
            loop.call_soon(self._flush)
        return done

    def _connection(self) -> Connection:
        # One connection of its own, used by one flush at a time; on SQLite
        # it never waits in the busy handler.
        if self._conn is None:
            conn = self.engine.connect()
            if self._sqlite:
                driver = conn.connection.driver_connection
                assert driver is not None  # noqa: S101 - a checked-out connection has one
                driver.execute("PRAGMA busy_timeout = 0")
            # What work runs through SQLAlchemy (the compiled statements
            # check themselves, vrm/storage/statements.py).
            event.listen(conn, "before_cursor_execute", _check_declared)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._conn is not None:
            # Closed, not handed back: on SQLite the pool's connections wait
            # for the write lock, and this one does not.
            self._conn.invalidate()
            self._conn.close()
            self._conn = None

    def _run_all(self, batch: list[_Job[Any]]) -> None:
        conn = self._connection()
        driver = conn.connection.driver_connection
        assert driver is not None  # noqa: S101 - a checked-out connection has one
        if not conn.in_transaction():
            conn.begin()
        cursor = driver.cursor()
        try:
            if self._sqlite:
                # The write lock first, or nothing: fails with SQLITE_BUSY
                # at once while another process holds it.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.info[_STEADY] = _Steady(frozenset().union(*(j.writes for j in batch)))
            info = conn.info
            info[_KEPT] = {}
            for job in batch:
                job.error = job.result = None
                info[_DEFERRED] = {}
                savepoint = Savepoint(conn, cursor)
                info[WRITES] = job.writes
                try:
                    job.result = job.context.run(job.work, savepoint)
                except Exception as exc:
                    job.error = exc
                    savepoint.rollback()
                else:
                    _keep(info)
            info.pop(WRITES, None)
            info.pop(_DEFERRED, None)
            cursor.close()
            for write, items in info.pop(_KEPT).items():
                write(conn, items)
            conn.info.pop(_STEADY, None)
            self._commit(conn)
        except BaseException:
            conn.info.pop(_STEADY, None)
            conn.info.pop(WRITES, None)
            conn.info.pop(_DEFERRED, None)
            conn.info.pop(_KEPT, None)
            try:
                conn.rollback()
            except Exception:
                # A broken connection (the server restarted, say): the next
                # flush starts on a new one.
                self._conn = None
                conn.invalidate()
            raise

    def _commit(self, conn: Connection) -> None:
        conn.commit()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._waited:
            # One more turn of the loop first: the requests that arrived
            # while the last group ran are read in it and join this one.
            # Without it, at eight connections sending as fast as they are
            # answered, groups were small and many were of one, each paying
            # for a commit of its own; with it, nearly every group is of
            # eight. The turn is cheap; an idle server waits for nothing.
            self._waited = True
            loop.call_soon(self._flush)
            return
        self._waited = False
        if self._thread is not None:
            # Requests that come meanwhile wait for the next flush.
            batch = list(self._pending)
            ran = loop.run_in_executor(self._thread, self._run_all, batch)
            ran.add_done_callback(lambda done: self._ran(batch, done))
            return
        batch = self._pending
        try:
            self._run_all(batch)
        except OperationalError as exc:
            now = loop.time()
            if _is_busy(exc) and now - (self._busy_since or now) < self.GIVE_UP_AFTER:
                self._busy_since = self._busy_since or now
                loop.call_later(self.RETRY_SECONDS, self._flush)
                return
            self._finish(batch, exc)
        except Exception as exc:  # every request of the group fails with it
            self._finish(batch, exc)
        else:
            self._finish(batch, None)

    def _ran(self, batch: list[_Job[Any]], done: asyncio.Future[None]) -> None:
        if done.cancelled():
            self._finish(batch, RuntimeError("the group's work was cancelled"))
            return
        failed = done.exception()
        if failed is not None and not isinstance(failed, Exception):
            raise failed
        self._finish(batch, failed)

    def _finish(self, batch: list[_Job[Any]], failed: Exception | None) -> None:
        self._pending = self._pending[len(batch) :]
        self._busy_since = None
        self._scheduled = False
        if self._pending:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        for job in batch:
            if job.done.done():  # its request went away
                continue
            error = failed or job.error
            if error is None:
                job.done.set_result(job.result)
            else:
                job.done.set_exception(error)


def _check_declared(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: ExecutionContext | None,
    executemany: bool,
) -> None:
    """Before SQLAlchemy runs an insert, update or delete on the group's
    connection: its table must be one the running work declared."""
    compiled = getattr(context, "compiled", None)
    if compiled is None or not (context.isinsert or context.isupdate or context.isdelete):  # type: ignore[union-attr]
        return
    table = getattr(compiled.statement, "table", None)
    if isinstance(table, Table):
        check_write(conn.info, table)


def _is_busy(exc: OperationalError) -> bool:
    return getattr(exc.orig, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
    )


_groups_lock = threading.Lock()


def of(state: Any) -> GroupCommit:
    """The app's group commit for the running event loop, made on first use.

    A uvicorn worker has one event loop; an app driven from several (test
    clients in threads) gets a group, and a connection, for each, and those
    wait for each other's write lock as other processes' do."""
    loop = asyncio.get_running_loop()
    groups: dict[asyncio.AbstractEventLoop, GroupCommit] | None = getattr(
        state, "group_commits", None
    )
    found = groups.get(loop) if groups is not None else None
    if found is not None:
        return found
    with _groups_lock:
        groups = getattr(state, "group_commits", None)
        if groups is None:
            groups = state.group_commits = {}
        for gone in [other for other in groups if other.is_closed()]:
            groups.pop(gone).close()
        found = groups[loop] = GroupCommit(state.engine)
    return found


def close(state: Any) -> None:
    """At shutdown: the groups' threads stop and their connections close
    before the engine is disposed."""
    with _groups_lock:
        for group in getattr(state, "group_commits", {}).values():
            group.close()
        state.group_commits = {}
