"""An erasure or a destroyed key in one process takes effect in every other
within ``key_cache_seconds`` (docs/keys.md, Caching), not at its restart.

Both tests use two processes: a serving one that has read the customer's
keys, and another that destroys them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import Session

from tests.conftest import Person
from tests.kit import assert_problem
from tests.liveserver import PASSWORD, live_server
from tests.vendor_api.test_key_faults import ROOT_KEY_GONE
from tests.vrm.test_keys import _backup, _open, _open_all, _sealed, _shows, _write
from vrm.crypto.keystore import FileKeyStore
from vrm.errors import KeyUnavailable
from vrm.keys.service import Vault
from vrm.settings import Settings

CACHE_SECONDS = 1.0
# What the bound may take beyond the cache's lifetime on a busy machine.
SLACK_SECONDS = 2.0


def _until_refused(attempt: Callable[[], bool], started: float) -> None:
    """Wait until ``attempt()`` returns True, at most the bound."""
    deadline = started + CACHE_SECONDS + SLACK_SECONDS
    while True:
        if attempt():
            return
        assert time.monotonic() < deadline, "the destroyed key still opened data"
        time.sleep(0.05)


def _log_in(url: str, email: str) -> httpx.Client:
    http = httpx.Client(base_url=url, timeout=10)
    r = http.post("/api/v1/accounts", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = http.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    r = http.put("/api/v1/me/profile", json={"given_name": email.split("@")[0]})
    assert r.status_code == 200, r.text
    return http


def test_a_key_destroyed_by_another_process_stops_opening_in_a_running_server(
    tmp_path: Path,
) -> None:
    # Server custody: the key destroyed is a root key file in the key store.
    settings = {"VRM_KEY_CACHE_SECONDS": str(CACHE_SECONDS), "VRM_KEY_CUSTODY": "server"}
    with live_server(tmp_path / "var", settings=settings) as server:
        ana = _log_in(server.url, "ana@example.org")
        bob = _log_in(server.url, "bob@example.org")
        ana_id = ana.get("/api/v1/me").json()["id"]
        # The server has ana's keys in its caches now.
        assert ana.get("/api/v1/me/profile").json()["given_name"] == "ana"

        started = time.monotonic()
        FileKeyStore(tmp_path / "var" / "keys").destroy_customer(ana_id)

        def refused() -> bool:
            r = ana.get("/api/v1/me/profile")
            if r.status_code == 200:
                return False
            assert_problem(r, 500, "key-unavailable", detail=ROOT_KEY_GONE)
            return True

        _until_refused(refused, started)
        r = bob.get("/api/v1/me/profile")
        assert r.status_code == 200, r.text
        assert r.json()["given_name"] == "bob"
        ana.close()
        bob.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody: the bound on a root key file destroyed by another
    # process, which only a server-held root key has.
    return settings.model_copy(update={"key_cache_seconds": CACHE_SECONDS, "key_custody": "server"})


def test_an_erasure_by_another_process_shuts_a_backup_here_within_the_bound(
    app: FastAPI,
    settings: Settings,
    tmp_path: Path,
    ana: Person,
    bob: Person,
) -> None:
    _write(ana)
    bob_data = _write(bob)
    backup = _backup(app, settings, tmp_path)
    vault: Vault = app.state.vault
    with Session(backup) as session:
        records = _sealed(session, ana.id)
        # This process has read every one of ana's keys.
        for record in records:
            _open(session, vault, ana.id, record)

    folder = settings.key_dir_resolved / "customers" / ana.id
    gone_at: list[float] = []
    refused_at: list[float] = []
    stop = threading.Event()

    def all_refused() -> bool:
        with Session(backup) as session:
            for record in records:
                try:
                    _open(session, vault, ana.id, record)
                except KeyUnavailable:
                    continue
                return False
        return True

    def watch() -> None:
        # Reading on keeps this process's caches warm until the keys go.
        while not stop.is_set() and not refused_at:
            now = time.monotonic()
            if not gone_at and not folder.exists():
                gone_at.append(now)
            if all_refused():
                refused_at.append(time.monotonic())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env["VRM_DATA_DIR"] = str(settings.data_dir)
    if not settings.is_sqlite:
        env["VRM_DATABASE_URL"] = settings.database_url
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "vrm"), "customers", "erase", ana.id],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        watcher.join(CACHE_SECONDS + SLACK_SECONDS)
    finally:
        stop.set()
        watcher.join()
    assert gone_at, "the erasure left the key folder"
    assert refused_at, "the erased customer's keys still opened data here"
    assert refused_at[0] - gone_at[0] <= CACHE_SECONDS + SLACK_SECONDS
    with Session(backup) as session:
        assert _shows(_open_all(session, vault, bob.id), bob, bob_data)
    backup.dispose()
