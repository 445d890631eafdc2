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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from vrm.settings import Settings

logger = logging.getLogger(__name__)

# A commit checkpoints the WAL itself only once it holds this many pages
# (about 40 MB): a safety net for when no Checkpoints thread runs (the CLI).
AUTOCHECKPOINT_PAGES = 10_000


# How long a SQLite connection waits for another's write lock.
BUSY_TIMEOUT_SECONDS = 30.0


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
            # the group commit (vrm/groupcommit.py) pays it once per group.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
            # Savepoints in memory: the group commit (vrm/groupcommit.py)
            # gives each request a savepoint, and SQLite copies every page a
            # savepoint first changes into a statement journal, which past
            # 64 KiB goes to a temporary file. On file, that copying cost
            # about 45 microseconds per token issued; in memory, about 5.
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


class Checkpoints:
    """Copies SQLite's WAL into the database file every ``interval`` seconds
    from a thread of its own.

    Left to SQLite, the commit that fills the WAL past its threshold does
    the checkpoint, fsyncs included, and the vendor endpoints commit in the
    event loop (consent/oauth/endpoints.py): every request of the process
    waited for those fsyncs (bench/token.py, one worker: the server idle 15%
    of the time). A passive checkpoint waits for no reader or writer, and
    SQLite releases the GIL while it works."""

    def __init__(self, engine: Engine, interval: float = 0.25) -> None:
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except SQLAlchemyError:
                logger.warning(
                    "WAL checkpoint failed; SQLite will do it at a commit", exc_info=True
                )


def start_checkpoints(engine: Engine) -> Checkpoints | None:
    """A running :class:`Checkpoints` for a SQLite engine, None otherwise."""
    if engine.dialect.name != "sqlite":
        return None
    checkpoints = Checkpoints(engine)
    checkpoints.start()
    return checkpoints


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request. Services commit; this only closes (and so
    rolls back anything left and returns the connection to the pool).

    An async generator on purpose: a sync one costs two thread hops per
    request, and FastAPI runs the exits of all sync generator dependencies
    through one thread at a time, which capped throughput (bench/token.py
    went from 8.4 to about 5 ms a request). Creating a Session does no I/O;
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
