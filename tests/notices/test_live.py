"""Notices from real processes: ``vrm serve`` pushing them itself (the
embedded default), and ``vrm worker`` pushing them beside a server that
does not."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

from tests.liveserver import Browser, LiveServer, _vrm, live_server, vrm_command
from tests.notices.conftest import Receiver

WAIT_SECONDS = 15.0


def _grant(server: LiveServer) -> None:
    """A customer consents to the server's vendor, in a browser."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": server.vendor.client_id,
        "redirect_uri": server.vendor.redirect_uri,
        "scope": "profile.email:read",
        "state": "s",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "purpose": "dpv:ServiceProvision",
    }
    browser = Browser(server, server.new_customer())
    try:
        location = browser.authorize(f"{server.url}/oauth/authorize?{urlencode(query)}")
    finally:
        browser.close()
    assert "code=" in location


def _wait_for(receiver: Receiver, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(receiver.received) == count, receiver.received


def test_the_server_pushes_a_notice_itself(tmp_path: Path, receiver: Receiver) -> None:
    with live_server(tmp_path / "var", notify_uri=receiver.url("/notices")) as server:
        _grant(server)
        # The operator disables the vendor: every grant with it ends.
        _vrm(server.env, "vendors", "disable", server.vendor.client_id)
        _wait_for(receiver, 1)
        listed = _vrm(server.env, "notices", "list", "--json")
    assert '"state": "delivered"' in listed


def test_a_worker_pushes_notices_for_servers_that_do_not(
    tmp_path: Path, receiver: Receiver
) -> None:
    quiet = {"VRM_BACKGROUND_JOBS": "false"}
    with live_server(
        tmp_path / "var", settings=quiet, notify_uri=receiver.url("/notices")
    ) as server:
        _grant(server)
        _vrm(server.env, "vendors", "disable", server.vendor.client_id)
        time.sleep(2)
        assert receiver.received == []  # the server itself pushes nothing
        env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
        env.update(server.env)
        env.pop("VRM_BACKGROUND_JOBS")
        worker = subprocess.Popen(
            [vrm_command(), "worker"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for(receiver, 1)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            output, _ = worker.communicate(timeout=20)
    assert worker.returncode == 0, output
    assert b"worker stopped" in output
