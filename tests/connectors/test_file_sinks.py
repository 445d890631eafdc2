"""The csv and jsonl sinks: the protocol, files read back as written, and a
crash while rewriting leaves the old file whole."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi import FastAPI

from connectors import sync
from connectors.config import Config
from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks import Event
from connectors.sinks.files import FileSink
from connectors.sinks.open import mapping_of, open_sink
from connectors.state import State
from tests.conftest import Person
from tests.connectors.conftest import ISSUER, Connected
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import PROFILE, put


@pytest.fixture(params=["csv", "jsonl"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_what_is_written_is_read_back(tmp_path: Path, kind: str) -> None:
    sink = FileSink(tmp_path, FieldMap(DEFAULT), kind)
    sink.upsert("s1", {"email": "ana@example.org", "preferences": {"dietary": ["vegan"]}})
    sink.upsert("s2", {"email": "bob@example.org", "given_name": 'Bob, "the" builder\n'})
    sink.upsert_events([Event("s1", "e1", {"type": "purchase", "amount": "3.00"})])
    sink.close()
    again = FileSink(tmp_path, FieldMap(DEFAULT), kind)
    assert again.find("s1") == {
        **dict.fromkeys(FieldMap(DEFAULT).sink_fields),
        "email": "ana@example.org",
        "preferences": {"dietary": ["vegan"]},
    }
    found = again.find("s2")
    assert found is not None
    assert found["given_name"] == 'Bob, "the" builder\n'
    assert again.events_of("s1") == [Event("s1", "e1", {"type": "purchase", "amount": "3.00"})]
    again.delete_fields("s1", ["email", "preferences"])
    again.delete_events("s1")
    again.close()
    last = FileSink(tmp_path, FieldMap(DEFAULT), kind)
    assert last.subjects() == ["s2"]
    assert last.events_of("s1") == []


def test_a_crash_while_rewriting_leaves_the_old_file_whole(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = FileSink(tmp_path, FieldMap(DEFAULT), kind)
    sink.upsert("s1", {"email": "ana@example.org"})
    sink.commit()
    before = (tmp_path / f"contacts.{kind}").read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(os, "replace", crash)
    sink.upsert("s2", {"email": "bob@example.org"})
    with pytest.raises(OSError, match="the disk went away"):
        sink.commit()
    assert (tmp_path / f"contacts.{kind}").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"contacts.{kind}",
        f"history_events.{kind}",
    ]


def test_the_feed_synced_into_files(
    app: FastAPI, ana: Person, vendor: Vendor, connected: Connected, tmp_path: Path
) -> None:
    put(ana, "profile", PROFILE)
    tokens_for(ana, vendor, "profile.email:read")
    config = Config.model_validate(
        {
            "store_url": ISSUER,
            "client_id": vendor.client_id,
            "secret": vendor.client_secret,
            "sink": {"kind": "jsonl", "path": str(tmp_path / "export")},
            "state_dir": str(tmp_path / "files-state"),
        }
    )
    sink = open_sink(config)
    try:
        sync.run(config, connected.store, sink, mapping_of(config), State(config.state_dir))
    finally:
        sink.close()
    lines = (tmp_path / "export" / "contacts.jsonl").read_text().splitlines()
    [contact] = [json.loads(line) for line in lines]
    assert contact["email"] == PROFILE["email"]
    assert contact["given_name"] is None  # not granted
