"""Durability as promised (docs/operations.md, "Durability"): an answered
write is on disk before the answer is sent.

On SQLite that takes WAL with ``synchronous=FULL`` on every connection the
server writes through (a commit fsyncs the WAL; NORMAL fsyncs it only at
checkpoints, so a power cut could lose answered writes).
"""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI

from vrm import groupcommit
from vrm.settings import Settings

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_sqlite_commits_reach_the_disk_before_the_answer(app: FastAPI, settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite's pragmas")
    with app.state.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == FULL

    async def group_pragma() -> object:
        # The group commit's own connection, through which the vendor
        # endpoints write.
        conn = groupcommit.of(app.state)._connection()
        return conn.exec_driver_sql("PRAGMA synchronous").scalar()

    assert asyncio.run(group_pragma()) == FULL
