"""``vrm-connector sync --follow`` keeps polling: a change at the store
reaches the sink without another command; SIGTERM stops it, also when it
arrives while dlt runs (dlt forgot such a signal once its run ended, and
the connector polled on)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.sql import SQLSink
from tests.connectors.test_listen_live import _connector_command, _consent, _until
from tests.liveserver import Browser, live_server


def test_follow_brings_a_change_without_another_command(tmp_path: Path) -> None:
    crm = f"sqlite:///{tmp_path / 'crm.db'}"
    with live_server(tmp_path / "var") as server:
        config = tmp_path / "c.toml"
        config.write_text(
            f'store_url = "{server.url}"\nclient_id = "{server.vendor.client_id}"\n'
            f'secret_env = "VRM_CONNECTOR_SECRET"\n\n[sink]\nkind = "sql"\nurl = "{crm}"\n'
        )
        customer = server.new_customer()
        browser = Browser(server, customer)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
        env["VRM_CONNECTOR_SECRET"] = server.vendor.client_secret
        sink = SQLSink(crm, FieldMap(DEFAULT))
        following = subprocess.Popen(
            [_connector_command(), "sync", "-c", str(config), "--follow", "--interval", "0.5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            browser.http.post(
                f"{server.url}/api/v1/session",
                json={"email": customer.email, "password": customer.password},
            )
            profile = f"{server.url}/api/v1/me/profile"
            assert browser.http.put(profile, json={"given_name": "Ana"}).status_code == 200
            _, subject = _consent(server, browser, "profile.given_name:read")

            def named(name: str) -> bool:
                found = sink.find(subject)
                return found is not None and found["given_name"] == name

            _until(lambda: named("Ana"))
            assert browser.http.put(profile, json={"given_name": "Ana Maria"}).status_code == 200
            _until(lambda: named("Ana Maria"))
        finally:
            os.killpg(following.pid, signal.SIGTERM)
            out, err = following.communicate(timeout=30)
            browser.close()
            sink.close()
        assert b"synced" in out, err
        # SIGTERM stops it at a safe point, by its own hand, not by the
        # signal's default action: between syncs cleanly, during one with
        # a line saying the next sync goes on.
        assert b"vrm-connector: stopped" in err, err
        assert following.returncode in (0, 1), (following.returncode, err)
