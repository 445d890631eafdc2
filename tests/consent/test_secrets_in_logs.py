"""No secret reaches a log line: client secrets, codes, tokens, passwords,
even with every logger turned up to DEBUG (Authlib logs whole token dicts at
DEBUG; the server keeps its logger above that)."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import Person
from tests.consent.conftest import Vendor, authorize


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
