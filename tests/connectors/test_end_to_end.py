"""The whole path, real processes: ``vrm serve``; a customer who consents
on the consent page; ``vrm-connector`` syncing into a real BottleCRM (and
listening for the store's notices) and into PostgreSQL. The contact holds
exactly the granted fields, read through BottleCRM's own API, and no
private event; a narrowing takes the field out of both; a revocation's
notice takes the contact out of BottleCRM at once and the next sync out of
PostgreSQL; the store's log has each acknowledgement."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx

from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.bottlecrm import NOT_SHARED
from connectors.sinks.sql import SQLSink
from tests.connectors.bottlecrm import BottleCRM
from tests.connectors.test_listen_live import _connector_command, _consent, _listening, _until
from tests.liveserver import Browser, _vrm, free_port, live_server

SCOPE = "profile.email:read profile.given_name:read preferences:read history:read"


def _contacts(crm: BottleCRM) -> list[dict]:  # type: ignore[type-arg]
    r = httpx.get(f"{crm.base_url}/api/contacts/", params={"limit": 100}, headers=crm.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def test_consent_sync_narrow_and_revoke_across_both_sinks(
    tmp_path: Path, crm: BottleCRM, crm_postgres_url: str
) -> None:
    port = free_port()
    table = f"e2e_{time.time_ns()}"
    with live_server(tmp_path / "var", notify_uri=f"http://127.0.0.1:{port}/notices") as server:
        common = (
            f'store_url = "{server.url}"\nclient_id = "{server.vendor.client_id}"\n'
            'secret_env = "VRM_CONNECTOR_SECRET"\n'
        )
        to_crm = tmp_path / "crm.toml"
        to_crm.write_text(
            common + 'state_dir = "crm-state"\n\n[sink]\nkind = "bottlecrm"\n'
            f'url = "{crm.base_url}"\ntoken_env = "BOTTLECRM_TOKEN"\n'
        )
        to_pg = tmp_path / "pg.toml"
        to_pg.write_text(
            common + 'state_dir = "pg-state"\n\n[sink]\nkind = "sql"\n'
            f'url = "{crm_postgres_url}"\n'
            f'contacts_table = "{table}_c"\nevents_table = "{table}_e"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
        env["VRM_CONNECTOR_SECRET"] = server.vendor.client_secret
        env["BOTTLECRM_TOKEN"] = crm.token

        def sync(config: Path) -> None:
            ran = subprocess.run(
                [_connector_command(), "sync", "-c", str(config)],
                env=env,
                capture_output=True,
                text=True,
            )
            assert ran.returncode == 0, ran.stderr

        customer = server.new_customer()
        browser = Browser(server, customer)
        pg = SQLSink(
            crm_postgres_url,
            FieldMap(DEFAULT),
            contacts_table=f"{table}_c",
            events_table=f"{table}_e",
        )
        os.environ["BOTTLECRM_TOKEN"] = crm.token  # for _listening's environment
        try:
            me = f"{server.url}/api/v1/me"
            browser.http.post(
                f"{server.url}/api/v1/session",
                json={"email": customer.email, "password": customer.password},
            )
            profile = {"email": customer.email, "given_name": "Ana", "phone": "+351 912 345 678"}
            assert browser.http.put(f"{me}/profile", json=profile).status_code == 200
            event = {"vendor": "Bertrand Books", "type": "purchase"}
            shown = browser.http.post(
                f"{me}/history", json={**event, "occurred_at": "2026-11-01T10:00:00Z"}
            )
            hidden = browser.http.post(
                f"{me}/history",
                json={**event, "occurred_at": "2026-11-02T10:00:00Z", "labels": ["private"]},
            )
            assert (shown.status_code, hidden.status_code) == (201, 201)
            grant, subject = _consent(server, browser, SCOPE)

            with _listening(to_crm, port, tmp_path / "listen.log"):
                sync(to_crm)
                sync(to_pg)
                [contact] = _contacts(crm)
                assert contact["email"] == customer.email
                assert contact["custom_fields"] == {crm.subject_field: subject}
                # Granted: the email and the given name. Not granted: the
                # family name (not made up either), the phone.
                assert contact["first_name"] == "Ana"
                assert contact["last_name"] == NOT_SHARED
                assert not contact["phone"]
                held = pg.find(subject)
                assert held is not None
                assert held["email"] == customer.email
                assert held["given_name"] == "Ana"
                assert held["phone"] is None
                [only] = pg.events_of(subject)  # the private one never came
                assert only.data["occurred_at"].startswith("2026-11-01")

                grants = f"{me}/grants/{grant}"
                narrowed = browser.http.patch(
                    grants,
                    json={
                        "scopes": ["profile.given_name:read", "preferences:read", "history:read"]
                    },
                )
                assert narrowed.status_code == 200, narrowed.text
                _until(lambda: not _contacts(crm)[0]["email"])  # the notice, at once
                sync(to_pg)
                held = pg.find(subject)
                assert held is not None
                assert held["email"] is None

                assert browser.http.delete(grants).status_code == 204
                _until(lambda: _contacts(crm) == [])
                sync(to_pg)
                assert pg.find(subject) is None
                assert pg.events_of(subject) == []
        finally:
            os.environ.pop("BOTTLECRM_TOKEN", None)
            browser.close()
            pg.close()
        listed = json.loads(_vrm(server.env, "notices", "list", "--json"))
        assert [(n["state"], n["last_outcome"]) for n in listed] == [("delivered", "202")] * 2
    with sqlite3.connect(tmp_path / "var" / "vrm.db") as db:
        bodies = db.execute(
            "SELECT body FROM audit_entry WHERE type = 'notice.acknowledged' ORDER BY idx"
        ).fetchall()
    acknowledged = [json.loads(body) for (body,) in bodies]
    assert [a["reason"] for a in acknowledged] == ["narrowed", "revoked"]
    assert {a["grant"] for a in acknowledged} == {grant}
