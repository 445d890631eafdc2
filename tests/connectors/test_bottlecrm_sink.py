"""The bottlecrm sink against a real BottleCRM: contacts found by the
subject in their custom field exactly, fields set and cleared, a contact
with nothing left deleted; and a sync of the store's feed into it, the
contact holding exactly what was granted, read back through BottleCRM's
own API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from connectors import sync
from connectors.config import Config
from connectors.mapping import FieldMap
from connectors.sinks.bottlecrm import BOTTLECRM, NOT_SHARED, BottleCRMError, BottleCRMSink
from connectors.sinks.open import open_sink
from connectors.state import State
from tests.conftest import Person
from tests.connectors.bottlecrm import BottleCRM
from tests.connectors.conftest import ISSUER, Connected
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import PROFILE, add_event, put

GRANTS = "/api/v1/me/grants"


@pytest.fixture
def sink(crm: BottleCRM) -> BottleCRMSink:
    s = BottleCRMSink(crm.base_url, crm.token, subject_field=crm.subject_field)
    yield s  # type: ignore[misc]
    s.close()


def _contacts(crm: BottleCRM) -> list[dict]:  # type: ignore[type-arg]
    r = httpx.get(f"{crm.base_url}/api/contacts/", params={"limit": 1000}, headers=crm.headers)
    assert r.status_code == 200, r.text
    return list(r.json()["results"])


def test_contacts_are_found_by_subject_exactly(sink: BottleCRMSink, crm: BottleCRM) -> None:
    sink.upsert("subject-1", {"email": "ana@example.org", "first_name": "Ana"})
    sink.upsert("subject-10", {"email": "bob@example.org"})
    fresh = BottleCRMSink(crm.base_url, crm.token, subject_field=crm.subject_field)
    try:
        found = fresh.find("subject-1")
        assert found is not None
        assert (found["email"], found["first_name"], found["last_name"]) == (
            "ana@example.org",
            "Ana",
            None,  # not shared, and not made up
        )
        assert fresh.find("subject") is None
        assert fresh.subjects() == ["subject-1", "subject-10"]
    finally:
        fresh.close()
    [ana] = [c for c in _contacts(crm) if c["email"] == "ana@example.org"]
    assert ana["last_name"] == NOT_SHARED
    assert ana["custom_fields"] == {crm.subject_field: "subject-1"}


def test_fields_cleared_and_a_contact_with_nothing_left_deleted(
    sink: BottleCRMSink, crm: BottleCRM
) -> None:
    sink.upsert(
        "s1",
        {"email": "a@example.org", "phone": "+351 912 345 678", "address": {"locality": "Lisboa"}},
    )
    sink.upsert("s1", {"phone": None})
    found = sink.find("s1")
    assert found is not None
    assert found["phone"] is None
    assert found["address"] == {"locality": "Lisboa"}
    sink.delete_fields("s1", ["email", "address"])
    assert sink.find("s1") is None
    assert _contacts(crm) == []


def test_a_refusal_is_one_line_with_bottlecrm_s_words(sink: BottleCRMSink) -> None:
    sink.upsert("s1", {"email": "same@example.org"})
    with pytest.raises(BottleCRMError, match="already exists with this email"):
        sink.upsert("s2", {"email": "SAME@example.org"})


def test_the_feed_synced_into_bottlecrm_holds_exactly_what_was_granted(
    app: FastAPI, ana: Person, vendor: Vendor, crm: BottleCRM, tmp_path: Path, monkeypatch
) -> None:
    put(ana, "profile", PROFILE)
    add_event(ana, occurred_at="2026-11-01T10:00:00Z")
    grant = tokens_for(ana, vendor, "profile.email:read profile.given_name:read history:read")
    monkeypatch.setenv("BOTTLECRM_TOKEN", crm.token)
    connected = Connected(app, vendor, tmp_path / "vendor")
    config = Config.model_validate(
        {
            "store_url": ISSUER,
            "client_id": vendor.client_id,
            "secret": vendor.client_secret,
            "sink": {
                "kind": "bottlecrm",
                "url": crm.base_url,
                "token_env": "BOTTLECRM_TOKEN",
                "subject_field": crm.subject_field,
            },
            "state_dir": str(tmp_path / "crm-state"),
        }
    )
    sink = open_sink(config)
    try:
        sync.run(config, connected.store, sink, FieldMap(BOTTLECRM), State(config.state_dir))
        [contact] = _contacts(crm)
        assert contact["email"] == PROFILE["email"]
        assert contact["first_name"] == PROFILE["given_name"]
        # Not granted: not there, and not guessed.
        assert contact["last_name"] == NOT_SHARED
        assert not contact["phone"]
        assert not contact["city"]
        r = ana.client.patch(
            f"{GRANTS}/{grant['grant_id']}", json={"scopes": ["profile.given_name:read"]}
        )
        assert r.status_code == 200, r.text
        sync.run(config, connected.store, sink, FieldMap(BOTTLECRM), State(config.state_dir))
        [contact] = _contacts(crm)
        assert not contact["email"]
        assert contact["first_name"] == PROFILE["given_name"]
        assert ana.client.delete(f"{GRANTS}/{grant['grant_id']}").status_code == 204
        sync.run(config, connected.store, sink, FieldMap(BOTTLECRM), State(config.state_dir))
        assert _contacts(crm) == []
    finally:
        sink.close()
        connected.close()
