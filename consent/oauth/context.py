"""Where Authlib's callbacks find the database.

Authlib calls ``query_client``, ``save_token`` and the grants' hooks with
the request only, so the transaction they work in is set here around each
call: the ORM session of an authorization page (:func:`bound`), or the bare
connection and savepoint of a vendor endpoint in a group commit
(:func:`run_on`, vrm/storage/groupcommit.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlmodel import Session

T = TypeVar("T")


class Transactional(Protocol):
    """What commit() and rollback() act on with a bare connection: the
    connection itself, or the request's savepoint in a group commit
    (vrm/storage/groupcommit.py)."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


_db: ContextVar[Session] = ContextVar("consent_db")
_conn: ContextVar[Connection] = ContextVar("consent_conn")
_tx: ContextVar[Transactional] = ContextVar("consent_tx")


@contextmanager
def bound(session: Session) -> Iterator[None]:
    """Callbacks use ``session`` (the authorization pages)."""
    reset = _db.set(session)
    try:
        yield
    finally:
        _db.reset(reset)


def run_on(
    connection: Connection,
    transaction: Transactional,
    work: Callable[..., T],
    *args: Any,
) -> T:
    """``work(*args)``, its callbacks on ``connection``, committing and
    rolling back ``transaction`` (the vendor endpoints: the group commit's
    connection and the request's savepoint). A plain call, not a context
    manager: this runs for every vendor call."""
    reset = _conn.set(connection)
    reset_tx = _tx.set(transaction)
    try:
        return work(*args)
    finally:
        _tx.reset(reset_tx)
        _conn.reset(reset)


def db() -> Session:
    """The ORM session: only on the authorization pages."""
    return _db.get()


def conn() -> Connection:
    """The connection every callback's Core statements run on."""
    session = _db.get(None)
    # A session hands out a new connection after each commit: ask each time.
    return session.connection() if session is not None else _conn.get()


def commit() -> None:
    session = _db.get(None)
    if session is not None:
        session.commit()
    else:
        _tx.get().commit()


def rollback() -> None:
    session = _db.get(None)
    if session is not None:
        session.rollback()
    else:
        _tx.get().rollback()
