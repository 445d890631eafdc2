"""End to end, real processes: ``vrm-connector sync`` puts a customer's
granted data into the sql sink; ``vrm serve`` pushes its notices to
``vrm-connector listen``, which purges a narrowed field and then the whole
contact; the store has each acknowledgement."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.sql import SQLSink
from tests.liveserver import (
    Browser,
    LiveServer,
    _vrm,
    free_port,
    grant_on_consent_page,
    live_server,
)

WAIT = 20.0


def _connector_command() -> str:
    return str(Path(sys.executable).parent / "vrm-connector")


@contextmanager
def _listening(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env["VRM_CONNECTOR_SECRET"] = "not needed to listen"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [_connector_command(), "listen", "-c", str(config), "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)


def _until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _consent(server: LiveServer, browser: Browser, scope: str) -> tuple[str, str]:
    """The grant id and the pairwise subject, as the vendor gets them."""
    token = grant_on_consent_page(server, browser, scope)
    auth = (server.vendor.client_id, server.vendor.client_secret)
    info = httpx.post(
        f"{server.url}/oauth/introspect", data={"token": token["access_token"]}, auth=auth
    ).json()
    return token["grant_id"], info["sub"]


def test_the_store_s_notices_purge_the_vendor_s_sink(tmp_path: Path) -> None:
    port = free_port()
    crm = f"sqlite:///{tmp_path / 'crm.db'}"
    with live_server(tmp_path / "var", notify_uri=f"http://127.0.0.1:{port}/notices") as server:
        config = tmp_path / "vrm-connector.toml"
        config.write_text(
            f'store_url = "{server.url}"\nclient_id = "{server.vendor.client_id}"\n'
            'secret_env = "VRM_CONNECTOR_SECRET"\n\n'
            f'[sink]\nkind = "sql"\nurl = "{crm}"\n'
        )
        customer = server.new_customer()
        browser = Browser(server, customer)
        sink = SQLSink(crm, FieldMap(DEFAULT))
        try:
            with _listening(config, port, tmp_path / "connector.log"):
                login = browser.http.post(
                    f"{server.url}/api/v1/session",
                    json={"email": customer.email, "password": customer.password},
                )
                assert login.status_code in (200, 201, 204), login.text
                r = browser.http.put(
                    f"{server.url}/api/v1/me/profile", json={"email": customer.email}
                )
                assert r.status_code == 200, r.text
                grant, subject = _consent(server, browser, "profile.email:read preferences:read")
                synced = subprocess.run(
                    [_connector_command(), "sync", "-c", str(config)],
                    env={**os.environ, "VRM_CONNECTOR_SECRET": server.vendor.client_secret},
                    capture_output=True,
                    check=True,
                )
                assert b"synced 1 items" in synced.stdout, synced.stdout
                held = sink.find(subject)
                assert held is not None
                assert held["email"] == customer.email
                grants = f"{server.url}/api/v1/me/grants/{grant}"
                r = browser.http.patch(grants, json={"scopes": ["preferences:read"]})
                assert r.status_code == 200, r.text

                def email_gone() -> bool:
                    found = sink.find(subject)
                    return found is not None and found["email"] is None

                _until(email_gone)
                left = sink.find(subject)
                assert left is not None
                assert left["preferences"] is not None  # still granted, still held
                assert browser.http.delete(grants).status_code == 204
                _until(lambda: sink.find(subject) is None)
        finally:
            browser.close()
            sink.close()
        listed = json.loads(_vrm(server.env, "notices", "list", "--json"))
        assert [n["state"] for n in listed] == ["delivered", "delivered"]
    env = {**os.environ, "VRM_CONNECTOR_SECRET": "x"}
    status = subprocess.run(
        [_connector_command(), "status", "-c", str(config), "--json"],
        env=env,
        capture_output=True,
        check=True,
    )
    counts = json.loads(status.stdout)["counts"]
    assert counts["items_applied"] == 1
    assert counts["notices_purged"] == 2
    assert counts.get("notices_refused", 0) == 0
