"""SQLite's WAL checkpoints run in a thread of their own while the app
serves (vrm/db.py), so the vendor endpoints, which commit in the event
loop, never wait for a checkpoint's fsyncs."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from vrm.db import AUTOCHECKPOINT_PAGES, Checkpoints, start_checkpoints


def test_only_sqlite_gets_a_checkpoint_thread(app: FastAPI, backend: str) -> None:
    checkpoints = start_checkpoints(app.state.engine)
    try:
        assert (checkpoints is not None) == (backend == "sqlite")
    finally:
        if checkpoints is not None:
            checkpoints.stop()


def test_the_thread_stops_and_commits_keep_a_safety_net(app: FastAPI, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("WAL checkpoints are SQLite's; PostgreSQL has none to stop")
    engine = app.state.engine
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == AUTOCHECKPOINT_PAGES
    checkpoints = Checkpoints(engine, interval=0.01)
    checkpoints.start()
    checkpoints.stop()
    assert not checkpoints._thread.is_alive()


def test_the_app_stops_its_thread_when_it_stops(app: FastAPI) -> None:
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert "sqlite-checkpoints" not in {t.name for t in threading.enumerate()}
