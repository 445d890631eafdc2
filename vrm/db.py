"""Engine and sessions.

One engine per app (held on ``app.state``), created from settings. SQLite gets
WAL, a busy timeout and foreign keys; PostgreSQL goes through psycopg 3.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from vrm.settings import Settings


def make_engine(settings: Settings) -> Engine:
    url = settings.database_url_resolved
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


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
