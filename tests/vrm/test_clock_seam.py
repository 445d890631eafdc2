"""Every wall-clock decision of the store reads vrm.dbtypes.utcnow, the one
seam the ``clock`` fixture moves: a backup's time, an erasure's line in the
journal and a data key's creation follow it (a module reading the system
clock of its own would be out of the tests' reach)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, select

from tests.conftest import sign_up_and_log_in
from tests.kit import Clock
from vrm.backup import archive
from vrm.backup.journal import ErasureJournal
from vrm.backup.sealing import new_key, parse_key
from vrm.catalogue import DATA_KEYS
from vrm.keys.models import DataKey
from vrm.settings import Settings

# A time no test machine's clock shows, so a stamp taken from the system
# clock cannot pass by chance.
THEN = datetime(2031, 5, 17, 8, 9, 10, tzinfo=UTC)


def test_erasure_journal_stamps_each_line_with_the_apps_clock(tmp_path: Path, clock: Clock) -> None:
    journal = ErasureJournal(tmp_path / "erasures.journal")
    clock.now = THEN
    journal.record("a1")
    clock.advance(3600)
    journal.record("b2")
    assert journal.path.read_text() == "2031-05-17T08:09:10Z a1\n2031-05-17T09:09:10Z b2\n"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_backup_manifest_states_the_apps_clock(
    app: FastAPI, settings: Settings, tmp_path: Path, clock: Clock
) -> None:
    clock.now = THEN
    folder = tmp_path / "backup"
    archive.create(settings, parse_key(new_key()), folder)
    assert archive.read_manifest(folder)[0]["created_at"] == "2031-05-17T08:09:10Z"


def test_data_keys_are_created_at_the_apps_clock(app: FastAPI, clock: Clock) -> None:
    clock.now = THEN
    # Signing up creates the customer's data keys.
    person = sign_up_and_log_in(app, "ana@example.org")
    person.client.close()
    with Session(app.state.engine) as session:
        created = session.exec(
            select(DataKey.created_at).where(col(DataKey.customer_id) == person.id)
        ).all()
    assert created == [THEN] * len(DATA_KEYS)
