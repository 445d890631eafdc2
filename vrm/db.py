"""Engine and sessions.

One engine per app (held on ``app.state``), created from settings. SQLite gets
WAL with ``synchronous=FULL``, a busy timeout and foreign keys, and its
checkpoints run in a thread of their own (:class:`Checkpoints`); PostgreSQL
goes through psycopg 3.

Durability: a commit that returned is on disk. On SQLite, FULL makes every
commit fsync the WAL (NORMAL fsyncs it only at checkpoints: a killed process
loses nothing, but a power cut or kernel crash can lose answered commits).
On PostgreSQL it is the server's ``fsync`` and ``synchronous_commit`` (on by
default; the test cluster turns fsync off). See docs/operations.md.

Erasure: SQLite overwrites deleted rows with zeros (``secure_delete``), and
after an erasure the WAL, which still holds the pages as they were before,
is truncated (:func:`scrub_wal`). PostgreSQL keeps dead tuples until VACUUM
(docs/operations.md, "Erasure on disk").
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from vrm.settings import Settings

logger = logging.getLogger(__name__)

# A commit checkpoints the WAL itself only once it holds this many pages
# (about 40 MB): a safety net for when no Checkpoints thread runs (the CLI).
AUTOCHECKPOINT_PAGES = 10_000


# How long a SQLite connection waits for another's write lock.
BUSY_TIMEOUT_SECONDS = 30.0

# One attempt to truncate the WAL waits this long for readers on an older
# snapshot, holding the write lock meanwhile (SQLite blocks writers while a
# TRUNCATE checkpoint waits): short, and tried again at each checkpoint.
TRUNCATE_WAIT_MS = 50
# After this long without a truncation, say so (once).
TRUNCATE_WARN_AFTER_SECONDS = 10.0


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url_resolved
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Every commit fsyncs the WAL before it returns (docstring above);
            # the group commit (vrm/storage/groupcommit.py) pays it once per group.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            # Savepoints in memory: the group commit (vrm/storage/groupcommit.py)
            # gives each request a savepoint, and SQLite copies every page a
            # savepoint first changes into a statement journal, which past
            # 64 KiB goes to a temporary file, which cost far more per token
            # than in memory (docs/performance.md#sqlite-settings).
            cur.execute("PRAGMA temp_store=MEMORY")
            # Deleted rows are overwritten with zeros, not left in free
            # space: erasure must not depend on how SQLite was compiled.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class Checkpoints:
    """Copies SQLite's WAL into the database file every ``interval`` seconds
    from a thread of its own.

    Left to SQLite, the commit that fills the WAL past its threshold does
    the checkpoint, fsyncs included, and the vendor endpoints commit in the
    event loop (consent/oauth/endpoints.py): every request of the process
    waited for those fsyncs, and a one-worker server sat idle part of the
    time (docs/performance.md#sqlite-settings). A passive checkpoint waits
    for no reader or writer, and SQLite releases the GIL while it works.

    A passive checkpoint leaves the WAL file as long as it was, and SQLite
    reuses it from the start, so pages from before an erasure stay in it
    until overwritten. :meth:`truncate_soon` asks for a TRUNCATE checkpoint
    instead, tried at each tick until no reader holds a snapshot older than
    the erasure."""

    def __init__(self, engine: Engine, interval: float = 0.25) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._truncate = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        _running.pop(self.engine, None)
        self._stop.set()
        self._thread.join()

    def truncate_soon(self) -> None:
        self._truncate.set()

    def _run(self) -> None:
        owed_since: float | None = None
        warned = False
        while not self._stop.wait(self.interval):
            if self._truncate.is_set():
                # Cleared first: a request made during the attempt stays.
                self._truncate.clear()
                if owed_since is None:
                    owed_since = time.monotonic()
                if truncate_wal(self.engine):
                    owed_since, warned = None, False
                    continue
                self._truncate.set()
                if not warned and time.monotonic() - owed_since > TRUNCATE_WARN_AFTER_SECONDS:
                    _warn_untruncated(TRUNCATE_WARN_AFTER_SECONDS)
                    warned = True  # once; and keep trying
                continue
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError:
                logger.warning(
                    "WAL checkpoint failed; SQLite will do it at a commit", exc_info=True
                )


_running: weakref.WeakKeyDictionary[Engine, Checkpoints] = weakref.WeakKeyDictionary()


def start_checkpoints(engine: Engine) -> Checkpoints | None:
    """A running :class:`Checkpoints` for a SQLite engine, None otherwise."""
    if engine.dialect.name != "sqlite":
        return None
    checkpoints = Checkpoints(engine)
    checkpoints.start()
    _running[engine] = checkpoints
    return checkpoints


def truncate_wal(engine: Engine) -> bool:
    """One TRUNCATE checkpoint: the WAL copied into the database and cut to
    nothing. False if a reader on an older snapshot (or a writer) kept it
    from completing within ``TRUNCATE_WAIT_MS``."""
    try:
        with engine.connect() as conn:
            return _truncate(conn)
    except SQLAlchemyError:  # SQLITE_BUSY (a writer held on), or worse: try again later
        return False


def _truncate(conn: Connection) -> bool:
    conn.exec_driver_sql(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
    try:
        busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    return bool(busy == 0)


def scrub_wal(engine: Engine) -> None:
    """Call after a commit that erased a customer: on SQLite, truncate the
    WAL, which still holds their pages as they were before.

    In the server the checkpoint thread does it, off the request path,
    within a tick or as soon as the readers on older snapshots are done; a
    command (``vrm customers erase``, a restore) tries here for
    ``TRUNCATE_WARN_AFTER_SECONDS``. Either logs a warning if it could not.
    PostgreSQL: nothing to do here (VACUUM, docs/operations.md)."""
    if engine.dialect.name != "sqlite":
        return
    checkpoints = _running.get(engine)
    if checkpoints is not None:
        checkpoints.truncate_soon()
        return
    deadline = time.monotonic() + TRUNCATE_WARN_AFTER_SECONDS
    while not truncate_wal(engine):
        if time.monotonic() > deadline:
            _warn_untruncated(TRUNCATE_WARN_AFTER_SECONDS)
            return
        time.sleep(0.25)


def _warn_untruncated(seconds: float) -> None:
    logger.warning(
        "SQLite WAL not truncated %.0f s after an erasure: a reader holds an older "
        "snapshot; erased rows stay in the WAL file until a truncation succeeds",
        seconds,
    )


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request. Services commit; this only closes (and so
    rolls back anything left and returns the connection to the pool).

    An async generator on purpose: a sync one costs two thread hops per
    request, and FastAPI runs the exits of all sync generator dependencies
    through one thread at a time, which capped throughput
    (docs/performance.md#the-routed-paths). Creating a Session does no I/O;
    the connection is checked out in the worker thread that first uses it."""
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def read_snapshot(session: Session) -> None:
    """Make the session's next transaction read one consistent snapshot.

    On PostgreSQL that is REPEATABLE READ; call it before the transaction's
    first statement, and only for reads (an UPDATE of a row changed since
    the snapshot would fail). SQLite's driver runs each SELECT outside a
    transaction, so there each statement is its own snapshot; see
    docs/operations.md."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
