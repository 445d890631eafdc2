"""No secret reaches a log line: client secrets, codes, tokens, passwords,
even with every logger turned up to DEBUG (Authlib logs whole token dicts at
DEBUG; the server keeps its logger above that)."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Person
from tests.consent.conftest import Vendor, authorize, read_form


def test_a_whole_flow_logs_no_secret(
    caplog: pytest.LogCaptureFixture, ana: Person, vendor: Vendor
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = authorize(ana, vendor)
    token = vendor.exchange(auth.code, auth.verifier).json()
    refreshed = vendor.refresh(token["refresh_token"]).json()
    vendor.introspect(refreshed["access_token"])
    bad = vendor.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read"},
        auth=(vendor.client_id, vendor.client_secret + "wrong"),
    )
    assert bad.status_code == 401
    secrets = [
        vendor.client_secret,
        auth.code,
        auth.verifier,
        token["access_token"],
        token["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
        ana.password,
    ]
    # The flow did log: an empty log would prove nothing.
    assert caplog.records
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    leaked = [s for s in secrets if s in logged]
    assert leaked == []


def test_a_device_login_logs_no_secret(caplog: pytest.LogCaptureFixture, ana: Person) -> None:
    caplog.set_level(logging.DEBUG)
    device = TestClient(ana.client.app)
    started = device.post("/oauth/device_authorization", data={"client_id": "vrm-me"}).json()
    page = ana.client.get("/device", params={"user_code": started["user_code"]})
    form = read_form(page.text)
    ana.client.post("/device", data={**form.hidden, "decision": "approve"}, follow_redirects=False)
    token = device.post(
        "/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": started["device_code"],
            "client_id": "vrm-me",
        },
    ).json()
    refreshed = device.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "client_id": "vrm-me",
        },
    ).json()
    assert (
        device.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"}
        ).status_code
        == 200
    )
    secrets = [
        started["device_code"],
        started["user_code"],
        started["user_code"].replace("-", ""),
        token["access_token"],
        token["refresh_token"],
        refreshed["access_token"],
        refreshed["refresh_token"],
    ]
    # The server's records: httpx's are the test's own browser logging the
    # URL it opened, verification_uri_complete, which carries the user code
    # by design (RFC 8628 3.3.1).
    server_side = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert server_side
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in server_side)
    assert [s for s in secrets if s in logged] == []
