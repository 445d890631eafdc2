"""The connector against the store: in process (the store's app behind an
httpx transport, on SQLite and PostgreSQL) or as real processes
(tests/liveserver.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from connectors.config import Config
from connectors.sinks.open import mapping_of, open_sink
from connectors.sinks.sql import SQLSink
from connectors.state import State
from connectors.store import Store
from tests.connectors.bottlecrm import ENSURE, BottleCRM, bottlecrm_server, venv_exists
from tests.consent.conftest import Vendor

ISSUER = "http://127.0.0.1:8000"


@pytest.fixture(scope="session")
def crm_postgres_url(postgres_url: str) -> str:
    """A database of the vendor's own beside the store's, in the test
    PostgreSQL cluster: the sinks' tables must not land in the store's
    database, whose schema tests/vrm/test_migrations.py compares with the
    models."""
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute("CREATE DATABASE vrm_crm_test")
    return postgres_url.rsplit("/", 1)[0] + "/vrm_crm_test"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[BottleCRM]:
    """A BottleCRM of the test's own (tests/connectors/bottlecrm.py). CI must
    run it: there a missing install fails the test; elsewhere it skips."""
    if not venv_exists() and not _in_ci():
        pytest.skip(f"BottleCRM is not installed; run {ENSURE} to run this test")
    with bottlecrm_server(tmp_path / "bottlecrm") as server:
        yield server


class Connected:
    """A connector's parts, configured as a vendor would, its store the
    test's app."""

    def __init__(self, app: FastAPI, vendor: Vendor, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.config = Config.model_validate(
            {
                "store_url": ISSUER,
                "client_id": vendor.client_id,
                "secret": vendor.client_secret,
                "sink": {"kind": "sql", "url": f"sqlite:///{folder / 'crm.db'}"},
                "state_dir": str(folder / "state"),
            }
        )
        self._http = TestClient(app)
        self.store = Store(
            ISSUER, vendor.client_id, vendor.client_secret, transport=self._http._transport
        )
        sink = open_sink(self.config)
        assert isinstance(sink, SQLSink)
        self.sink: SQLSink = sink
        self.mapping = mapping_of(self.config)
        self.state = State(self.config.state_dir)

    def close(self) -> None:
        self.sink.close()
        self.store.close()
        self._http.close()


@pytest.fixture
def connected(app: FastAPI, vendor: Vendor, tmp_path: Path) -> Iterator[Connected]:
    c = Connected(app, vendor, tmp_path / "vendor")
    yield c
    c.close()
