"""The one typed transaction domain code is handed.

A use case's work runs in one of two transactions: an ORM session's (the
pages, the customer API) or one request's part of a group commit (the
vendor endpoints, vrm/storage/groupcommit.py). Code that serves both (the
authorization server's callbacks, the token store) takes a
:class:`Transaction` and never asks which: Core statements run on
:attr:`Transaction.conn`, and :meth:`~Transaction.commit` and
:meth:`~Transaction.rollback` keep or undo what it wrote so far.

Inside a group, the work declared the tables it writes when it was
submitted; a write to any other table raises :class:`UndeclaredWrite`
(:func:`check_write`), since the group's reads that are kept for the whole
group (``groupcommit.steady_reads``) assume nothing else changes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlmodel import Session

# Key, in the group connection's info, of the tables the running work
# declared it writes (absent outside a group: nothing is checked).
WRITES = "vrm.storage.writes"


class UndeclaredWrite(RuntimeError):
    """Work in a group wrote a table it did not declare."""


class Transaction:
    """What domain code commits, rolls back and runs statements on."""

    __slots__ = ()

    @property
    def conn(self) -> Connection:
        """The connection Core statements (vrm/storage/statements.py) run on."""
        raise NotImplementedError

    def commit(self) -> None:
        """Keep what the work wrote so far, whatever happens to it next."""
        raise NotImplementedError

    def rollback(self) -> None:
        """Undo what the work wrote since it began or last committed."""
        raise NotImplementedError


class SessionTransaction(Transaction):
    """The transaction of an ORM session (the authorization pages)."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def conn(self) -> Connection:
        # A session hands out a new connection after each commit: ask each time.
        return self.session.connection()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()


def check_write(info: dict[Any, Any], table: Table) -> None:
    """Raise :class:`UndeclaredWrite` if ``table`` is written in a group
    (``info`` is the connection's) whose work did not declare it."""
    declared: frozenset[Table] | None = info.get(WRITES)
    if declared is not None and table not in declared:
        raise UndeclaredWrite(
            f"work in a group commit wrote {table.name}, which it did not declare"
        )
