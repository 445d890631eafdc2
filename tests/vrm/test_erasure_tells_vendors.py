"""Every erasure tells the vendors holding the customer's data: through the
API, the operator's `vrm customers erase`, and a restore's replay of the
erasure journal. The store knows nothing of grants; consent registers with
its erasure at start-up (docs/architecture.md), so each path is checked
here: one that forgot the registration would leave vendors unaware."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from tests.conftest import Person
from tests.consent.conftest import register_vendor, tokens_for
from tests.vendor_api.helpers import PROFILE, put, read
from tests.vrm.test_backup import _created, _stop, vrm
from vrm import cli
from vrm.backup.sealing import new_key
from vrm.db import make_engine
from vrm.feed.models import FeedNotice
from vrm.settings import Settings


@dataclass
class Granted:
    grant_id: str
    subject: str


@pytest.fixture
def granted(app: FastAPI, ana: Person) -> Granted:
    put(ana, "profile", PROFILE)
    vendor = register_vendor(app)
    tokens = tokens_for(ana, vendor, "profile.email:read history:read")
    r = read(vendor, tokens["access_token"])
    assert r.status_code == 200, r.text
    return Granted(grant_id=tokens["grant_id"], subject=r.json()["subject"])


def _notices(settings: Settings) -> list[tuple[object, ...]]:
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            rows = session.exec(select(FeedNotice).order_by(col(FeedNotice.seq))).all()
            return [
                (n.kind, n.reason, n.grant_id, n.customer_id, n.subject, n.fields) for n in rows
            ]
    finally:
        engine.dispose()


def _told(granted: Granted) -> list[tuple[object, ...]]:
    """The vendor's one tombstone, under the subject it knows."""
    fields = ["history", "profile.email"]
    return [("ended", "account_deleted", granted.grant_id, None, granted.subject, fields)]


def test_erasure_through_the_api_tells_the_vendor(
    settings: Settings, ana: Person, granted: Granted
) -> None:
    r = ana.client.request("DELETE", "/api/v1/me", json={"password": ana.password})
    assert r.status_code == 204, r.text
    assert _notices(settings) == _told(granted)


def test_erasure_by_the_operator_command_tells_the_vendor(
    settings: Settings, ana: Person, granted: Granted
) -> None:
    env = {"VRM_DATA_DIR": str(settings.data_dir), "VRM_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(cli.app, ["customers", "erase", ana.id], env=env)
    assert result.exit_code == 0, result.output
    assert _notices(settings) == _told(granted)


def test_erasure_replayed_by_a_restore_tells_the_vendor_again(
    app: FastAPI, settings: Settings, tmp_path: Path, ana: Person, granted: Granted
) -> None:
    key = new_key()
    folder = tmp_path / "backup"
    # ana's root key is hers: the key store holds none of it.
    _created(vrm(settings, "backup", "create", str(folder), key=key), folder, 1, root_keys=0)
    r = ana.client.request("DELETE", "/api/v1/me", json={"password": ana.password})
    assert r.status_code == 204, r.text
    _stop(app)

    result = vrm(settings, "backup", "restore", str(folder), "--force", key=key)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("; 1 customers erased again from the journal\n")
    # The restored store held the grant unrevoked: the replay tells the
    # vendor once more (notices are delivered at least once anyway).
    assert _notices(settings) == _told(granted)
