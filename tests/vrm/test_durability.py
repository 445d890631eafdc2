"""Durability as promised (docs/operations.md, "Durability"): an answered
write is on disk before the answer is sent.

On SQLite that takes WAL with ``synchronous=FULL`` on every connection the
server writes through (a commit fsyncs the WAL; NORMAL fsyncs it only at
checkpoints, so a power cut could lose answered writes).
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine

from tests.conftest import PASSWORD, _truncate_all
from tests.liveserver import Restartable
from vrm.settings import Settings
from vrm.storage import groupcommit

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


# -- kill -9 under concurrent writes -------------------------------------------
#
# `vrm serve` as a real process, several client threads writing (history
# events and preference PATCHes, each with a marker of its own, and a vendor
# taking client-credentials tokens, which the group commit writes), SIGKILL
# at a random moment, start again: every write that was answered is there,
# once; a write that was cut off is there at most once. This is what a
# killed process can lose; a power cut is what synchronous=FULL is for
# (above), which a test cannot pull.

ROUNDS = 3
WRITERS = 4
FREE_KEYS = 90  # preferences.free holds at most 100 keys
EVENT = {"vendor": "Bertrand Books", "type": "purchase", "occurred_at": "2026-11-20T15:30:00Z"}


@dataclass
class Writer:
    """One customer, written by one thread, and what the server answered."""

    client: httpx.Client
    events_sent: list[str] = field(default_factory=list)
    events_acked: list[str] = field(default_factory=list)
    free_sent: dict[str, int] = field(default_factory=dict)
    free_acked: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)

    def run(self, url: str, label: str) -> None:
        n = 0
        while True:
            n += 1
            marker = f"{label}-{n}-{secrets.token_hex(3)}"
            try:
                if n % 2 or len(self.free_sent) >= FREE_KEYS:
                    self.events_sent.append(marker)
                    r = self.client.post(
                        f"{url}/api/v1/me/history", json={**EVENT, "notes": marker}
                    )
                    if r.status_code == 201:
                        self.events_acked.append(marker)
                        continue
                else:
                    self.free_sent[marker] = n
                    r = self.client.patch(
                        f"{url}/api/v1/me/preferences", json={"free": {marker: n}}
                    )
                    if r.status_code == 200:
                        self.free_acked[marker] = n
                        continue
            except httpx.TransportError:
                return  # the server is gone: this write was cut off
            self.unexpected.append(f"{r.request.method} {r.status_code} {r.text}")
            return

    def check(self, url: str) -> None:
        """What the restarted server holds for this customer."""
        notes: list[str] = []
        params: dict[str, Any] = {"limit": 200}
        while True:
            r = self.client.get(f"{url}/api/v1/me/history", params=params)
            assert r.status_code == 200, r.text
            notes += [e["notes"] for e in r.json()["items"]]
            if r.json()["next_cursor"] is None:
                break
            params["cursor"] = r.json()["next_cursor"]
        counts = Counter(notes)
        assert [m for m in self.events_acked if counts[m] != 1] == []  # each exactly once
        assert set(counts) <= set(self.events_sent)
        assert max(counts.values(), default=1) == 1  # a cut-off write at most once
        r = self.client.get(f"{url}/api/v1/me/preferences")
        assert r.status_code == 200, r.text
        free = r.json().get("free", {})
        assert {k: free.get(k) for k in self.free_acked} == self.free_acked
        assert {k: self.free_sent.get(k) for k in free} == free


@dataclass
class TokenTaker:
    """A vendor taking client-credentials tokens, which the token endpoint
    writes in a group commit (vrm/storage/groupcommit.py), in the event loop on
    SQLite."""

    client: httpx.Client
    acked: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    def run(self, url: str) -> None:
        body = {"grant_type": "client_credentials", "scope": "feed:read"}
        while True:
            try:
                r = self.client.post(f"{url}/oauth/token", data=body)
            except httpx.TransportError:
                return
            if r.status_code != 200:
                self.unexpected.append(f"{r.status_code} {r.text}")
                return
            self.acked.append(r.json()["access_token"])

    def check(self, url: str) -> None:
        inactive = []  # which of the answered tokens the server forgot
        for n, token in enumerate(self.acked):
            r = self.client.post(f"{url}/oauth/introspect", data={"token": token})
            assert r.status_code == 200, r.text
            if r.json()["active"] is not True:
                inactive.append(n)
        assert inactive == []


def _writer(url: str, n: int) -> Writer:
    email = f"writer-{n}-{secrets.token_hex(4)}@example.org"
    client = httpx.Client(timeout=10)
    body = {"email": email, "password": PASSWORD}
    r = client.post(f"{url}/api/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    r = client.post(f"{url}/api/v1/session", json=body)
    assert r.status_code == 200, r.text
    return Writer(client)


def _mid_stream(writers: list[Writer], seconds: float = 10) -> None:
    """Until every writer has had a few writes answered."""
    deadline = time.monotonic() + seconds
    while any(len(w.events_acked) < 3 for w in writers) and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_answered_write_survives_kill_9(
    database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = None
    if database == "postgresql":
        database_url = request.getfixturevalue("postgres_url")
        engine = create_engine(database_url)
        _truncate_all(engine)
        engine.dispose()
    rng = random.Random(secrets.randbits(32))
    server = Restartable(tmp_path / "var", database_url)
    writers: list[Writer] = []
    vendor = server.vendor
    taker = TokenTaker(httpx.Client(timeout=10, auth=(vendor.client_id, vendor.client_secret)))
    server.start()
    try:
        for round_ in range(ROUNDS):
            these = [_writer(server.url, round_ * WRITERS + n) for n in range(WRITERS)]
            writers += these
            threads = [
                threading.Thread(target=w.run, args=(server.url, f"r{round_}w{n}"))
                for n, w in enumerate(these)
            ]
            threads.append(threading.Thread(target=taker.run, args=(server.url,)))
            for t in threads:
                t.start()
            # Every thread mid-stream, then a moment nobody chose.
            _mid_stream(these)
            time.sleep(rng.uniform(0, 0.3))
            server.kill()
            for t in threads:
                t.join(10)
            assert not any(t.is_alive() for t in threads)
            server.start()
            for w in writers:
                assert w.unexpected == []
                w.check(server.url)
            assert taker.unexpected == []
            taker.check(server.url)
        # The kills fell among answered writes, not before them.
        assert all(len(w.events_acked) >= 3 for w in writers)
        assert len(taker.acked) >= ROUNDS
    finally:
        server.stop()
        taker.client.close()
        for w in writers:
            w.client.close()
