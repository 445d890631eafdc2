"""Shared fixtures.

Every API test runs twice, on SQLite and on a real PostgreSQL server that
this harness starts for the session (tests/pgserver.py) and stops after.
The schema comes from the Alembic migrations, so they are tested too.

Fixtures live here and in each folder's conftest.py; the checks and steps
tests share (assert_problem, log_in, bearer, exported, Clock) live in
tests/kit.py, their one home.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

import vrm.models  # noqa: F401 - every table on the metadata
from tests.kit import Clock, assert_problem, log_in
from tests.pgserver import postgres_cluster
from vrm import dbtypes, migrate
from vrm.app import create_app
from vrm.db import make_engine
from vrm.keys import server as server_keys
from vrm.settings import Settings
from vrm.storage import groupcommit

PASSWORD = "correct horse battery staple"
UNEXPECTED = "The server met an error it did not expect; it has been logged."

# Argon2id at test strength: same algorithm, a fraction of the cost.
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
# The audit log's checkpoints are signed, and notices pushed, when a test
# asks (tests/audit, tests/notices), not by threads whose statements would
# mix with those a test counts.
TEST_SETTINGS = {**FAST_HASH, "audit_checkpoint_seconds": 0, "notice_interval_seconds": 0}


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_cluster() as url:
        migrate.upgrade(Settings(database_url=url))
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sqlite-template")
    migrate.upgrade(Settings(data_dir=folder))
    return folder / "vrm.db"


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        # The audit log's triggers refuse a truncate (migration 0013); a
        # superuser's replica role, which the test server's owner has, skips
        # them.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # The change log's clock row and the audit log's head are seeded by
        # their migrations.
        conn.execute(text("INSERT INTO feed_clock (id, seq) VALUES (1, 0)"))
        conn.execute(text("INSERT INTO audit_head (id, size) VALUES (1, 0)"))


@pytest.fixture(scope="session")
def shared_live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One ``vrm serve`` for the modules whose clients each sign up their own
    customer and change nothing else (openid-client, Authlib, the API docs
    page): a server start is seconds. A module that needs its own settings
    or vendor starts its own (tests/liveserver.py)."""
    from tests.liveserver import live_server  # it imports tests.consent.conftest

    with live_server(tmp_path_factory.mktemp("live-server")) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def custody_of_keys() -> str:
    """Who holds new customers' root keys (VRM_KEY_CUSTODY): the product's
    default. A test of server-held mechanics parametrizes it ("server")."""
    default: str = Settings.model_fields["key_custody"].default
    return default


@pytest.fixture
def settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, custody_of_keys: str
) -> Settings:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    chosen: dict[str, Any] = {**TEST_SETTINGS, "key_custody": custody_of_keys}
    if backend == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), data_dir / "vrm.db")
        return Settings(data_dir=data_dir, **chosen)
    url = request.getfixturevalue("postgres_url")
    return Settings(data_dir=data_dir, database_url=url, **chosen)


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    if not settings.is_sqlite:
        # Empty first: vrm init creates no key that existing rows need.
        engine = make_engine(settings)
        _truncate_all(engine)
        engine.dispose()
    # What `vrm init` does: create_app creates no key.
    server_keys.open_key_store(settings, create=True)
    app = create_app(settings)
    yield app
    groupcommit.close(app.state)
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the time the whole app sees (vrm.dbtypes.utcnow, which every
    module asks), so lockouts, expiries and session times are exact."""
    frozen = Clock(datetime.now(UTC))
    monkeypatch.setattr(dbtypes, "now", lambda: frozen.now)
    return frozen


@dataclass
class Person:
    email: str
    password: str
    client: TestClient
    id: str


def log_out(person: Person) -> None:
    """End the person's session (DELETE /api/v1/session)."""
    assert person.client.delete("/api/v1/session").status_code == 204


def log_back_in(person: Person) -> dict[str, Any]:
    """Log the person in again with their password; the answer's body."""
    r = log_in(person.client, person.email, person.password)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def sign_up_and_log_in(app: FastAPI, email: str, password: str = PASSWORD) -> Person:
    c = TestClient(app)
    r = c.post("/api/v1/accounts", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    r = log_in(c, email, password)
    assert r.status_code == 200, r.text
    return Person(email=email, password=password, client=c, id=r.json()["id"])


@pytest.fixture
def ana(app: FastAPI) -> Iterator[Person]:
    person = sign_up_and_log_in(app, "ana@example.org")
    yield person
    person.client.close()


@pytest.fixture
def bob(app: FastAPI) -> Iterator[Person]:
    person = sign_up_and_log_in(app, "bob@example.org", "another long passphrase")
    yield person
    person.client.close()


def assert_unhandled_500(
    response: Any, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    """``response`` is the 500 problem for an unexpected error, which was
    logged once, with its traceback (vrm.errors.unhandled)."""
    assert_problem(response, 500, "internal", detail=UNEXPECTED, instance=path)
    (record,) = [rec for rec in caplog.records if rec.name == "vrm.errors"]
    assert record.getMessage() == f"unhandled error on {method} {path}"
    assert record.exc_info is not None


# A vendor registered by the operator, for the tests that need one: the
# consent journey's (tests/consent/conftest.py, imported here, not at the
# top, since it imports this module's Person).
@pytest.fixture
def vendor(app: FastAPI) -> Any:
    from tests.consent.conftest import register_vendor

    return register_vendor(app)


@pytest.fixture
def other_vendor(app: FastAPI) -> Any:
    from tests.consent.conftest import register_vendor

    return register_vendor(app, "Farmácia Central")
