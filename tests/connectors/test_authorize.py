"""``vrm-connector authorize``: one customer's consent by the code flow
with PKCE against the real store, the answer received on the loopback
redirect URI, the tokens kept encrypted; ``sync`` then reads that
customer's data with them, and drops them once the grant has ended."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.sql import SQLSink
from connectors.tokens import TokenStore, load_key, new_key
from tests.liveserver import Browser, live_server


def _command() -> str:
    return str(Path(sys.executable).parent / "vrm-connector")


def test_authorize_then_sync_with_the_customer_s_tokens(tmp_path: Path) -> None:
    key = new_key()
    with live_server(tmp_path / "var") as server:
        crm = f"sqlite:///{tmp_path / 'crm.db'}"
        config = tmp_path / "vrm-connector.toml"
        config.write_text(
            f'store_url = "{server.url}"\nclient_id = "{server.vendor.client_id}"\n'
            'secret_env = "VRM_CONNECTOR_SECRET"\ntoken_key_env = "VRM_CONNECTOR_TOKEN_KEY"\n\n'
            f'[sink]\nkind = "sql"\nurl = "{crm}"\n\n'
            f'[authorize]\nredirect_uri = "{server.vendor.redirect_uri}"\n'
            'scope = "profile.email:read"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
        env["VRM_CONNECTOR_SECRET"] = server.vendor.client_secret
        env["VRM_CONNECTOR_TOKEN_KEY"] = key
        customer = server.new_customer()
        browser = Browser(server, customer)
        process = subprocess.Popen(
            [_command(), "authorize", "-c", str(config), "--timeout", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            url = ""
            for line in process.stdout:
                if line.startswith(server.url):
                    url = line.strip()
                    break
            query = parse_qs(urlsplit(url).query)
            assert query["code_challenge_method"] == ["S256"]
            assert query["scope"] == ["profile.email:read"]
            login = browser.http.post(
                f"{server.url}/api/v1/session",
                json={"email": customer.email, "password": customer.password},
            )
            assert login.status_code in (200, 201, 204), login.text
            r = browser.http.put(f"{server.url}/api/v1/me/profile", json={"email": customer.email})
            assert r.status_code == 200, r.text
            callback = browser.authorize(url)
            # The browser's last step: to the vendor's loopback redirect URI.
            assert httpx.get(callback, timeout=10).status_code == 200
            out, err = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
            browser.close()
        assert process.returncode == 0, err
        assert "authorized: grant" in out
        state = tmp_path / "vrm-connector-state"
        sealed = state / "tokens.bin"
        assert stat.S_IMODE(os.stat(sealed).st_mode) == 0o600
        [held] = TokenStore(state, _key(key)).read().values()
        assert held.refresh_token is not None
        assert held.refresh_token.encode() not in sealed.read_bytes()
        assert held.subject.encode() not in sealed.read_bytes()

        synced = subprocess.run(
            [_command(), "sync", "-c", str(config)], env=env, capture_output=True, text=True
        )
        assert synced.returncode == 0, synced.stderr
        sink = SQLSink(crm, FieldMap(DEFAULT))
        try:
            found = sink.find(held.subject)
            assert found is not None
            assert found["email"] == customer.email
        finally:
            sink.close()

        # The customer revokes: the next sync drops their tokens, and the
        # feed's tombstone takes their data out of the sink.
        customer_http = httpx.Client()
        try:
            customer_http.post(
                f"{server.url}/api/v1/session",
                json={"email": customer.email, "password": customer.password},
            )
            r = customer_http.delete(f"{server.url}/api/v1/me/grants/{held.grant_id}")
            assert r.status_code == 204, r.text
        finally:
            customer_http.close()
        synced = subprocess.run(
            [_command(), "sync", "-c", str(config)], env=env, capture_output=True, text=True
        )
        assert synced.returncode == 0, synced.stderr
        assert TokenStore(state, _key(key)).read() == {}
        sink = SQLSink(crm, FieldMap(DEFAULT))
        try:
            assert sink.find(held.subject) is None
        finally:
            sink.close()

        wrong = {**env, "VRM_CONNECTOR_TOKEN_KEY": new_key()}
        refused = subprocess.run(
            [_command(), "sync", "-c", str(config)], env=wrong, capture_output=True, text=True
        )
        assert refused.returncode == 1
        assert refused.stderr.strip().endswith(
            "does not open with this key (another key, or the file changed)"
        )
        assert len(refused.stderr.strip().splitlines()) == 1


def _key(text: str) -> bytes:
    os.environ["VRM_TEST_TOKEN_KEY"] = text
    try:
        return load_key("VRM_TEST_TOKEN_KEY", None)
    finally:
        del os.environ["VRM_TEST_TOKEN_KEY"]
