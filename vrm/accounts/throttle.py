"""Login throttling: free attempts per counter, then growing delays.

A counter is keyed by a blind index (of a client address, of an account at
one address, of a password confirmation), so no email or address is stored
in the clear, and an unknown email is counted exactly like a known one.

Every attempt is *reserved* before its password is hashed: the counter's
row is locked, checked and counted in one short transaction, committed
before the slow hash starts. Parallel attempts therefore queue on the row
and each sees the ones before it, so a burst gets exactly the free attempts
and no more (a check before the hash and a count after it let 25 of 40
parallel guesses through a limit of 5). An attempt that turns out right
hands its reservation back or clears its counter (:func:`succeed`).

A counter allows ``free`` attempts; the attempt that reaches ``free``
starts a delay of ``login_lockout_seconds``, and each later one (made after
the delay) doubles it, up to ``login_lockout_max_seconds``. The count is
forgotten ``login_window_seconds`` after it started or, once a delay has
begun, after the last delay ended: waiting out each delay earns no new free
attempts.

The counter of an account at an address has a key that starts with a
prefix of the account alone (:func:`account_key`), so that erasing the
account can remove its counters at every address (:func:`forget_account`)
without knowing the addresses. A stolen database shows which counters
belong to one account, never which account.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, delete, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from vrm.accounts.models import LoginThrottle
from vrm.errors import TooManyRequests
from vrm.settings import Settings


@dataclass(frozen=True)
class Counter:
    key: bytes
    free: int
    """Attempts allowed before the delays start."""


# Bytes of the account prefix: 128 bits, no two accounts share one.
ACCOUNT_PREFIX_BYTES = 16


def account_key(account_prefix: bytes, address_key: bytes) -> bytes:
    """The key of an account's counter at one address; ``account_prefix``
    is a keyed hash of the account (never the lookup index itself, so the
    counter cannot be joined to the customer row), ``address_key`` one of
    the account and the address together."""
    if len(account_prefix) < ACCOUNT_PREFIX_BYTES:
        raise ValueError("account prefix too short")
    return account_prefix[:ACCOUNT_PREFIX_BYTES] + address_key


def forget_account(session: Session, account_prefix: bytes) -> None:
    """Delete the account's counters at every address (on erasure). Part of
    the caller's transaction."""
    prefix = account_prefix[:ACCOUNT_PREFIX_BYTES]
    key = col(LoginThrottle.key)
    session.exec(delete(LoginThrottle).where(func.substr(key, 1, len(prefix)) == prefix))


def reserve(
    session: Session, *, counters: Iterable[Counter], settings: Settings, now: datetime
) -> None:
    """Count one attempt on every counter, or on none and raise
    TooManyRequests (with the longest wait) if any of them is in a delay.
    Commits: call it before hashing, with nothing else pending."""
    session.commit()
    counters = sorted(counters, key=lambda c: c.key)  # one lock order: no deadlocks
    rows = []
    for counter in counters:
        row = _locked(session, counter.key, create_at=now)
        assert row is not None  # noqa: S101 - created if missing
        rows.append(row)
    waits = [
        (row.locked_until - now).total_seconds()
        for row in rows
        if row.locked_until is not None and row.locked_until > now
    ]
    if waits:
        session.rollback()
        raise TooManyRequests(
            "Too many failed attempts; try again later.", retry_after=math.ceil(max(waits))
        )
    for counter, row in zip(counters, rows, strict=True):
        if _forgotten(row, settings, now):
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= counter.free:
            doublings = min(row.failures - counter.free, 20)
            seconds = min(
                settings.login_lockout_seconds * 2**doublings, settings.login_lockout_max_seconds
            )
            row.locked_until = now + timedelta(seconds=seconds)
        session.add(row)
    session.commit()


def succeed(
    session: Session, *, hand_back: Iterable[Counter] = (), forget: Iterable[bytes] = ()
) -> None:
    """The attempt was right: hand it back to the ``hand_back`` counters
    (it was no failure; the delay lifts once the count is below ``free``)
    and forget the ``forget`` counters altogether. Part of the caller's
    transaction; locks the rows in the order :func:`reserve` does, so the
    two cannot deadlock."""
    todo: list[tuple[bytes, Counter | None]] = [(c.key, c) for c in hand_back]
    todo += [(key, None) for key in forget]
    for key, counter in sorted(todo, key=lambda item: item[0]):
        row = _locked(session, key, create_at=None)
        if row is None:
            continue
        if counter is None or row.failures <= 1:
            # Nothing left to remember: the table keeps only what failed.
            session.delete(row)
            continue
        row.failures -= 1
        if row.failures < counter.free:
            row.locked_until = None
        session.add(row)


def _forgotten(row: LoginThrottle, settings: Settings, now: datetime) -> bool:
    quiet_since = row.locked_until or row.window_started_at
    return quiet_since < _quiet_before(settings, now)


def forgotten(settings: Settings, now: datetime) -> ColumnElement[bool]:
    """The counters whose count is forgotten by ``now``, as :func:`_forgotten`
    decides, in SQL: the table need not keep them (vrm/purge.py)."""
    quiet_since = func.coalesce(
        col(LoginThrottle.locked_until), col(LoginThrottle.window_started_at)
    )
    return quiet_since < _quiet_before(settings, now)


def _quiet_before(settings: Settings, now: datetime) -> datetime:
    return now - timedelta(seconds=settings.login_window_seconds)


def _locked(session: Session, key: bytes, create_at: datetime | None) -> LoginThrottle | None:
    """The counter's row, locked until the transaction ends; created with
    no failures if ``create_at`` is given and it does not exist yet.

    The lock is taken by a write, the same on both backends: a statement
    that rewrites the row as it is. PostgreSQL locks the row (and in READ
    COMMITTED the next statement sees every commit made before the lock),
    SQLite the database (the write begins the transaction, so nothing older
    is seen)."""
    table = LoginThrottle.__table__  # type: ignore[attr-defined]
    stmt: Any
    if create_at is None:
        stmt = update(table).where(table.c.key == key).values(failures=table.c.failures)
    else:
        dialect = session.get_bind().dialect.name
        insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(table)
            .values(key=key, failures=0, window_started_at=create_at)
            .on_conflict_do_update(index_elements=["key"], set_={"failures": table.c.failures})
        )
    locked: CursorResult[Any] = session.execute(stmt)  # type: ignore[assignment]
    if locked.rowcount == 0:
        # No row to lock. Read nothing either: on PostgreSQL the next
        # statement's snapshot may see a row another attempt has inserted
        # since, which this transaction holds no lock on (changing it would
        # lose that attempt's update, deleting it could find it gone).
        return None
    query = select(LoginThrottle).where(col(LoginThrottle.key) == key)
    return session.exec(query.execution_options(populate_existing=True)).first()
