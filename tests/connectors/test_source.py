"""The feed as a public dlt source: a vendor loads it into a destination
dlt already has (here its SQLAlchemy destination, on SQLite), each item
once, and the next run only what came since."""

from __future__ import annotations

from pathlib import Path

import dlt
import pytest

from connectors.source import vrm_feed
from tests.conftest import Person
from tests.connectors.conftest import Connected
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import PROFILE, put


# dlt's SQLAlchemy merge job builds a statement SQLAlchemy 2 warns about;
# the suite turns warnings into errors, and this one is dlt's to fix.
@pytest.mark.filterwarnings("ignore:implicitly coercing SELECT object:sqlalchemy.exc.SAWarning")
def test_the_feed_loads_into_any_dlt_destination(
    ana: Person, bob: Person, vendor: Vendor, connected: Connected, tmp_path: Path
) -> None:
    put(ana, "profile", PROFILE)
    tokens_for(ana, vendor, "profile.email:read")
    url = f"sqlite:///{tmp_path / 'lake.db'}"
    pipeline = dlt.pipeline(
        pipeline_name="vendor_lake",
        pipelines_dir=str(tmp_path / "dlt"),
        destination=dlt.destinations.sqlalchemy(url),
        dataset_name="vrm",
    )
    pipeline.run(vrm_feed(connected.store))

    def rows() -> list[tuple[str, str]]:
        with pipeline.sql_client() as client:
            found = client.execute_sql("SELECT id, type FROM feed_items ORDER BY id")
        return [(str(i), str(kind)) for i, kind in found or []]

    first = rows()
    assert [kind for _, kind in first] == ["snapshot"]
    put(bob, "profile", {"email": "bob@example.org"})
    tokens_for(bob, vendor, "profile.email:read")
    put(ana, "profile", {**PROFILE, "email": "ana@new.example"})
    pipeline.run(vrm_feed(connected.store))
    second = rows()
    assert len(second) == 3  # Bob's snapshot and Ana's upsert: nothing twice
    assert sorted(kind for _, kind in second) == ["snapshot", "snapshot", "upsert"]
