"""An unexpected error answers cleanly: one 500 problem, logged once, and
nothing raised to the server (which would log the traceback again and
close the keep-alive connection)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Person, assert_unhandled_500
from vrm.records import service as records


def _broken(**_: Any) -> None:
    raise RuntimeError("the documents went away")


def test_an_unexpected_error_of_a_route_is_answered_and_not_raised_to_the_server(
    app: FastAPI, ana: Person, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(records, "read_document", _broken)
    # raise_server_exceptions (the default) re-raises whatever the app lets
    # escape to the server, as uvicorn would see it.
    client = TestClient(app, cookies=ana.client.cookies)
    with caplog.at_level("ERROR"):
        r = client.get("/api/v1/me/profile")
    assert_unhandled_500(r, caplog, "GET", "/api/v1/me/profile")
    assert "connection" not in r.headers
    # The server logged nothing of its own: only vrm.errors, once.
    assert [rec.name for rec in caplog.records if rec.levelname == "ERROR"] == ["vrm.errors"]
