"""vrm/groupcommit.py on its own: a group outlives the event loop that
started it, as when a process runs asyncio.run more than once."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import Connection, func, select

from tests.conftest import Person
from vrm.groupcommit import GroupCommit
from vrm.settings import Settings
from vrm.vendor_api.models import AccessEvent
from vrm.vendor_api.service import Reader, access_row, add_accesses


def _row(customer_id: str) -> dict[str, Any]:
    reader = Reader("vendor-1", customer_id, "g" * 32, "dpv:ServiceProvision", "subject", [])
    return access_row(reader, ["profile"], ["profile.email"])


def _count(app: FastAPI) -> int:
    with app.state.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(AccessEvent)).scalar_one())


def _write(conn: Connection, rows: list[dict[str, Any]]) -> None:
    add_accesses(conn, rows)


def test_a_group_left_waiting_by_a_finished_loop_does_not_stop_the_next(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite's write lock")
    group = GroupCommit(app.state.engine, _write)
    database = settings.database_url_resolved.removeprefix("sqlite:///")

    async def left_waiting() -> None:
        other = sqlite3.connect(database, timeout=0)
        other.execute("BEGIN IMMEDIATE")
        try:
            group.record(_row(ana.id))
            while not group.busy:
                await asyncio.sleep(0.001)
        finally:
            other.rollback()
            other.close()
        # The loop ends here, its retry of the flush never run.

    async def next_loop() -> None:
        await asyncio.wait_for(group.record(_row(ana.id)), timeout=30)

    try:
        asyncio.run(left_waiting())
        asyncio.run(next_loop())
    finally:
        group.close()
    assert _count(app) == 1
