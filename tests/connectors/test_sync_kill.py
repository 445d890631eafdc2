"""``vrm-connector sync`` killed with SIGKILL at random points, many rounds,
and run again: the sink ends equal to a clean sync, nothing lost and
nothing held twice. Real processes: ``vrm serve`` and the connector."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.sql import SQLSink
from connectors.state import State
from tests.connectors.test_listen_live import _consent
from tests.liveserver import Browser, LiveServer, live_server

CUSTOMERS = 12
EVENTS = 4
KILLS = 8


def _command() -> str:
    return str(Path(sys.executable).parent / "vrm-connector")


def _config(folder: Path, server: LiveServer) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vrm-connector.toml"
    path.write_text(
        f'store_url = "{server.url}"\nclient_id = "{server.vendor.client_id}"\n'
        'secret_env = "VRM_CONNECTOR_SECRET"\npage_size = 3\npages_per_load = 1\n\n'
        f'[sink]\nkind = "sql"\nurl = "sqlite:///{folder / "crm.db"}"\n'
    )
    return path


def _env(server: LiveServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env["VRM_CONNECTOR_SECRET"] = server.vendor.client_secret
    return env


def _start(config: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [_command(), "sync", "-c", str(config), "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _sync(config: Path, env: dict[str, str]) -> int:
    process = _start(config, env)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    return int(json.loads(out.decode().strip().splitlines()[-1])["items"])


def _kill_mid_sync(config: Path, env: dict[str, str], folder: Path, chance: random.Random) -> bool:
    """Start a sync, wait until a load has committed, let it go on a
    moment (into the next load, somewhere), then SIGKILL it. True if it
    was killed mid-sync, not after it had finished."""
    before = _applied(folder)
    process = _start(config, env)
    deadline = time.monotonic() + 60
    while _applied(folder) == before and process.poll() is None:
        assert time.monotonic() < deadline, "the sync made no progress"
        time.sleep(0.02)
    time.sleep(chance.uniform(0.0, 0.4))
    finished = process.poll() is not None
    if not finished:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=10)  # and close its pipes
    return not finished


def _applied(folder: Path) -> int:
    if not (folder / "vrm-connector-state" / "state.db").exists():
        return 0
    return State(folder / "vrm-connector-state").counts().get("items_applied", 0)


def _held(folder: Path) -> dict[str, Any]:
    sink = SQLSink(f"sqlite:///{folder / 'crm.db'}", FieldMap(DEFAULT))
    try:
        return {
            s: {"contact": sink.find(s), "events": sorted(e.event_id for e in sink.events_of(s))}
            for s in sink.subjects()
        }
    finally:
        sink.close()


def _customers(server: LiveServer) -> list[Browser]:
    """Customers who each granted the vendor their email, name and history,
    each logged in in a browser of their own."""
    browsers = []
    for n in range(CUSTOMERS):
        customer = server.new_customer(f"c{n}")
        browser = Browser(server, customer)
        browsers.append(browser)
        if True:
            login = browser.http.post(
                f"{server.url}/api/v1/session",
                json={"email": customer.email, "password": customer.password},
            )
            assert login.status_code in (200, 201, 204), login.text
            r = browser.http.put(
                f"{server.url}/api/v1/me/profile",
                json={"email": customer.email, "given_name": f"C{n}"},
            )
            assert r.status_code == 200, r.text
            for e in range(EVENTS):
                r = browser.http.post(
                    f"{server.url}/api/v1/me/history",
                    json={
                        "vendor": "Bertrand Books",
                        "type": "purchase",
                        "occurred_at": f"2026-11-0{e + 1}T10:00:00Z",
                    },
                )
                assert r.status_code == 201, r.text
            _consent(server, browser, "profile.email:read profile.given_name:read history:read")
    return browsers


def _change(server: LiveServer, browsers: list[Browser], chance: random.Random) -> None:
    """New work for the next sync: names changed, events added."""
    for browser in chance.sample(browsers, 4):
        r = browser.http.put(
            f"{server.url}/api/v1/me/profile",
            json={"email": browser.customer.email, "given_name": f"N{chance.random()}"},
        )
        assert r.status_code == 200, r.text
        r = browser.http.post(
            f"{server.url}/api/v1/me/history",
            json={
                "vendor": "Bertrand Books",
                "type": "return",
                "occurred_at": "2026-11-09T10:00:00Z",
            },
        )
        assert r.status_code == 201, r.text


def test_killed_at_random_points_the_sync_ends_equal_to_a_clean_one(tmp_path: Path) -> None:
    seed = int(os.environ.get("VRM_KILL_SEED", str(time.time_ns())))
    chance = random.Random(seed)
    with live_server(tmp_path / "var") as server:
        browsers = _customers(server)
        try:
            env = _env(server)
            killed = tmp_path / "killed"
            config = _config(killed, server)
            mid_sync = 0
            for _ in range(KILLS):
                _change(server, browsers, chance)
                mid_sync += _kill_mid_sync(config, env, killed, chance)
            _sync(config, env)
            clean = tmp_path / "clean"
            _sync(_config(clean, server), env)
        finally:
            for browser in browsers:
                browser.close()
        # Most kills must land mid-sync (seed {seed} replays this run).
        assert mid_sync >= KILLS // 2, f"only {mid_sync} of {KILLS} kills landed mid-sync"
        held = _held(killed)
        assert held == _held(clean), f"seed {seed}"
        assert len(held) == CUSTOMERS
        assert sum(len(h["events"]) for h in held.values()) == CUSTOMERS * EVENTS + 4 * KILLS
