"""vrm/storage/groupcommit.py on its own: the work of a group runs in one
transaction, each request's part in a savepoint; a request whose work fails
loses its part alone; a group outlives the event loop that started it, as
when a process runs asyncio.run more than once."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, bindparam, func, select, update

from consent.audit.models import AuditEntry
from consent.oauth.rows import VENDOR
from tests.conftest import Person
from vrm.db import BUSY_TIMEOUT_SECONDS
from vrm.settings import Settings
from vrm.storage.groupcommit import GroupCommit, steady_reads
from vrm.storage.statements import Statement
from vrm.storage.transaction import Transaction, UndeclaredWrite
from vrm.vendor_api.accesses import ACCESS_EVENT, WRITES, access_row, add_accesses
from vrm.vendor_api.edge import Reader
from vrm.vendor_api.models import AccessEvent

Work = Callable[[Transaction], Any]


@pytest.fixture
def group(app: FastAPI) -> Any:
    found = GroupCommit(app.state.engine)
    yield found
    found.close()


def _row(customer_id: str, purpose: str = "dpv:ServiceProvision") -> dict[str, Any]:
    reader = Reader("vendor-1", customer_id, "g" * 32, purpose, "subject", [])
    return access_row(reader, ["profile"], ["profile.email"])


def _count(app: FastAPI) -> int:
    """The access events committed, each with its audit log entry: the
    entries join the group and go (or stay) with their work's part."""
    with app.state.engine.connect() as conn:
        events = int(conn.execute(select(func.count()).select_from(AccessEvent)).scalar_one())
        entries = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    assert entries == events
    return events


def _count_in(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(AccessEvent)).scalar_one())


def _at_once(group: GroupCommit, works: list[Work]) -> list[Any]:
    """Runs the works as requests of one turn of the loop; their results, or
    the exceptions they ended with."""

    async def run() -> list[Any]:
        return list(
            await asyncio.gather(*(group.run(WRITES, w) for w in works), return_exceptions=True)
        )

    return asyncio.run(run())


def _insert(customer_id: str) -> Work:
    def work(tx: Transaction) -> int:
        add_accesses(tx.conn, [_row(customer_id)], via="data")
        return _count_in(tx.conn)

    return work


def test_the_requests_of_one_turn_share_a_transaction_and_see_each_other(
    app: FastAPI, group: GroupCommit, ana: Person
) -> None:
    before = _count(app)
    results = _at_once(group, [_insert(ana.id) for _ in range(3)])
    # Each saw the rows of those before it in the group, not yet committed.
    assert results == [before + 1, before + 2, before + 3]
    assert _count(app) == before + 3


def test_a_request_whose_work_fails_loses_its_part_alone(
    app: FastAPI, group: GroupCommit, ana: Person
) -> None:
    def fails(tx: Transaction) -> None:
        add_accesses(tx.conn, [_row(ana.id)], via="data")
        raise RuntimeError("broken after writing")

    before = _count(app)
    first, failed, last = _at_once(group, [_insert(ana.id), fails, _insert(ana.id)])
    assert isinstance(failed, RuntimeError)
    # The failed one's row was rolled back before the last one ran.
    assert (first, last) == (before + 1, before + 2)
    assert _count(app) == before + 2


def test_what_work_commits_stays_even_if_it_then_fails(
    app: FastAPI, group: GroupCommit, ana: Person
) -> None:
    def commits_then_fails(tx: Transaction) -> None:
        add_accesses(tx.conn, [_row(ana.id)], via="data")
        tx.commit()
        add_accesses(tx.conn, [_row(ana.id)], via="data")
        raise RuntimeError("broken after a commit")

    before = _count(app)
    (failed,) = _at_once(group, [commits_then_fails])
    assert isinstance(failed, RuntimeError)
    assert _count(app) == before + 1


def test_rollback_undoes_what_work_wrote_since_its_last_commit(
    app: FastAPI, group: GroupCommit, ana: Person
) -> None:
    def writes_twice_keeps_one(tx: Transaction) -> int:
        add_accesses(tx.conn, [_row(ana.id)], via="data")
        tx.commit()
        add_accesses(tx.conn, [_row(ana.id)], via="data")
        tx.rollback()
        return _count_in(tx.conn)

    before = _count(app)
    assert _at_once(group, [writes_twice_keeps_one]) == [before + 1]
    assert _count(app) == before + 1


def test_nothing_is_kept_when_the_commit_fails(
    app: FastAPI, group: GroupCommit, ana: Person, monkeypatch: Any
) -> None:
    def broken(*_: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(GroupCommit, "_commit", broken)
    before = _count(app)
    results = _at_once(group, [_insert(ana.id), _insert(ana.id)])
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    monkeypatch.undo()
    assert _count(app) == before
    assert _at_once(group, [_insert(ana.id)]) == [before + 1]


def _commits(monkeypatch: Any) -> list[int]:
    """Counts the group's commits."""
    counted: list[int] = []
    commit = GroupCommit._commit

    def counting(self: GroupCommit, conn: Connection) -> None:
        counted.append(1)
        commit(self, conn)

    monkeypatch.setattr(GroupCommit, "_commit", counting)
    return counted


def _turns_apart(group: GroupCommit, turns: int, ana: Person) -> list[Any]:
    """Two requests, the second ``turns`` turns of the loop after the first."""

    async def first() -> Any:
        return await group.run(WRITES, _insert(ana.id))

    async def later() -> Any:
        for _ in range(turns):
            await asyncio.sleep(0)  # one turn of the loop
        return await group.run(WRITES, _insert(ana.id))

    async def run() -> list[Any]:
        return list(await asyncio.gather(first(), later()))

    return asyncio.run(run())


def test_a_request_of_the_next_turn_joins_the_group(
    app: FastAPI, group: GroupCommit, ana: Person, monkeypatch: Any
) -> None:
    """The group waits one turn of the loop, so that requests whose bytes
    arrived while the last group ran share its commit."""
    commits = _commits(monkeypatch)
    before = _count(app)
    assert _turns_apart(group, 1, ana) == [before + 1, before + 2]
    assert len(commits) == 1


def test_a_group_waits_no_longer_than_that(
    app: FastAPI, group: GroupCommit, ana: Person, monkeypatch: Any
) -> None:
    commits = _commits(monkeypatch)
    before = _count(app)
    assert _turns_apart(group, 2, ana) == [before + 1, before + 2]
    assert len(commits) == 2


def test_each_work_runs_in_the_context_of_its_own_request(group: GroupCommit) -> None:
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who")

    async def request(name: str) -> str:
        who.set(name)
        return await group.run(WRITES, lambda _tx: who.get())

    async def run() -> list[str]:
        return list(await asyncio.gather(request("first"), request("second")))

    assert asyncio.run(run()) == ["first", "second"]


def test_a_group_left_waiting_by_a_finished_loop_does_not_stop_the_next(
    app: FastAPI, settings: Settings, group: GroupCommit, ana: Person
) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite's write lock")
    database = settings.database_url_resolved.removeprefix("sqlite:///")

    async def left_waiting() -> None:
        other = sqlite3.connect(database, timeout=0)
        other.execute("BEGIN IMMEDIATE")
        try:
            group.run(WRITES, _insert(ana.id))
            while not group.busy:
                await asyncio.sleep(0.001)
        finally:
            other.rollback()
            other.close()
        # The loop ends here, its retry of the flush never run.

    async def next_loop() -> int:
        return int(await asyncio.wait_for(group.run(WRITES, _insert(ana.id)), timeout=30))

    asyncio.run(left_waiting())
    # Done in time, and committed. (Whether the first loop ran its retry
    # while shutting down, after the lock was let go, is up to asyncio.)
    assert asyncio.run(next_loop()) == _count(app)


def test_a_closed_group_leaves_no_connection_that_would_not_wait_for_the_lock(
    app: FastAPI, settings: Settings, group: GroupCommit, ana: Person
) -> None:
    """On SQLite the group's connection never waits in the busy handler;
    back in the pool it would make another request fail at once on a busy
    lock."""
    if not settings.is_sqlite:
        pytest.skip("SQLite's write lock")
    _at_once(group, [_insert(ana.id)])
    group.close()
    engine = app.state.engine
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:
        timeouts = {c.exec_driver_sql("PRAGMA busy_timeout").scalar() for c in pooled}
    finally:
        for c in pooled:
            c.close()
    assert timeouts <= {int(BUSY_TIMEOUT_SECONDS * 1000)}


def test_sqlite_keeps_the_savepoints_journal_in_memory(app: FastAPI, settings: Settings) -> None:
    """Every request of a group has a savepoint, and SQLite copies each page
    it changes into a statement journal: in a temporary file, that copying
    cost about a quarter of a token request (bench/token_endpoint.py)."""
    if not settings.is_sqlite:
        pytest.skip("SQLite's temporary store")
    with app.state.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2  # MEMORY


def test_steady_reads_are_shared_by_one_group_on_sqlite_only(
    group: GroupCommit, settings: Settings
) -> None:
    def keeps(tx: Transaction) -> Any:
        steady = steady_reads(tx.conn, VENDOR)
        if steady is not None:
            steady.setdefault("seen", []).append(1)
            return id(steady), len(steady["seen"])
        return None

    first = _at_once(group, [keeps, keeps])
    second = _at_once(group, [keeps])
    if not settings.is_sqlite:
        # Other connections commit while a PostgreSQL group runs.
        assert first == [None, None]
        assert second == [None]
        return
    # One dict for the group; the next group starts with a new one.
    assert first[0][0] == first[1][0]
    assert [n for _, n in first] == [1, 2]
    assert second[0][1] == 1
    # Outside a group, none.
    with group.engine.connect() as conn:
        assert steady_reads(conn, VENDOR) is None


# -- what grouped work may write ----------------------------------------------

_RENAME = Statement(
    update(VENDOR).where(VENDOR.c.id == bindparam("id")).values(name=bindparam("name"))
)
_UNDECLARED = "work in a group commit wrote vendor, which it did not declare"


def _renames_on_the_cursor(tx: Transaction) -> int:
    return _RENAME.execute(tx.conn, {"id": "no-such-vendor", "name": "renamed"})


def _renames_through_sqlalchemy(tx: Transaction) -> int:
    found = tx.conn.execute(update(VENDOR).where(VENDOR.c.id == "no-such-vendor").values(name="x"))
    return found.rowcount


@pytest.mark.parametrize("renames", [_renames_on_the_cursor, _renames_through_sqlalchemy])
def test_work_that_writes_a_vendor_row_it_did_not_declare_fails_alone(
    app: FastAPI, group: GroupCommit, ana: Person, renames: Work
) -> None:
    """The group's steady reads (a vendor read once for the whole group)
    hold only if no work of the group writes a vendor: such a write raises,
    whether a compiled statement or SQLAlchemy runs it, and the others of
    the group go on."""
    before = _count(app)
    first, failed, last = _at_once(group, [_insert(ana.id), renames, _insert(ana.id)])
    assert isinstance(failed, UndeclaredWrite)
    assert str(failed) == _UNDECLARED
    assert (first, last) == (before + 1, before + 2)
    assert _count(app) == before + 2


@pytest.mark.parametrize("renames", [_renames_on_the_cursor, _renames_through_sqlalchemy])
def test_work_may_write_the_tables_it_declared(group: GroupCommit, renames: Work) -> None:
    async def run() -> int:
        return await group.run(frozenset({VENDOR}), renames)

    assert asyncio.run(run()) == 0


def test_a_table_some_work_of_the_group_writes_is_read_afresh(
    group: GroupCommit, settings: Settings
) -> None:
    def steady(tx: Transaction) -> tuple[bool, bool]:
        return steady_reads(tx.conn, VENDOR) is None, steady_reads(tx.conn, ACCESS_EVENT) is None

    # Access events are written by the group (WRITES): never steady. Vendors
    # are, on SQLite only.
    assert _at_once(group, [steady]) == [(not settings.is_sqlite, True)]


def test_a_group_whose_deferred_entries_cannot_be_written_loses_every_part(
    app: FastAPI, group: GroupCommit, ana: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consent.audit import log

    def full(conn: Connection, events: Any) -> int:
        raise RuntimeError("the log's disk is full")

    before = _count(app)
    monkeypatch.setattr(log, "_append", full)
    results = _at_once(group, [_insert(ana.id) for _ in range(3)])
    monkeypatch.undo()
    assert [str(r) for r in results] == ["the log's disk is full"] * 3
    assert _count(app) == before
