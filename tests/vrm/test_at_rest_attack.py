"""The at-rest attack (docs/threat-model.md, "A copy of the database and
the key store"): with a copy of both and no live session, an attacker who
knows this code tries every key the copy holds against every ciphertext,
adding each key that opens to the keys it tries, until nothing more
opens. What a customer never shared does not open; what a live grant
shares does (the positive control that the attack works); after the
revocation, that no longer opens either. A server-held customer beside
them opens entirely: the attack is not blind.

Passwords and recovery keys are not guessed here: they are the customer's
secrets, as strong as the customer makes them (docs/threat-model.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import Person, log_back_in, log_out, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.consent.test_device_flow import logged_in_device
from tests.kit import bearer
from tests.vendor_api.helpers import PREFERENCES, PROFILE, RECEIPT, add_event, put
from tests.vrm.at_rest import EVERYTHING, Copy, attack, ciphertexts, document, records, take_copy
from vrm import cli
from vrm.backup.sealing import new_key
from vrm.db import make_engine
from vrm.keys import custody
from vrm.settings import Settings
from vrm.storage import groupcommit


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_custody": "customer"})


def _person(app: FastAPI, email: str) -> Person:
    person = sign_up_and_log_in(app, email)
    put(person, "profile", PROFILE)
    put(person, "preferences", PREFERENCES)
    add_event(person, occurred_at="2026-11-01T10:00:00Z", notes="never shared")
    return person


def _revoke_and_leave(person: Person) -> None:
    """The customer logs in, revokes their one grant, and logs out."""
    log_back_in(person)
    (grant,) = person.client.get("/api/v1/me/grants").json()["items"]
    assert person.client.delete(f"/api/v1/me/grants/{grant['id']}").status_code == 204
    log_out(person)


@pytest.fixture
def store(app: FastAPI, settings: Settings, vendor: Vendor) -> dict[str, Any]:
    """ana (customer-held) shares her profile with the vendor; bob's root
    key is the server's, as for a customer from before."""
    ana = _person(app, "ana@example.org")
    grant = tokens_for(ana, vendor, "profile:read")
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    bob = _person(app, "bob@example.org")
    app.state.settings = settings
    # A session left open in the copy, its cookie not in it, and a
    # command line login (vrm-me's tokens), its tokens not in it either.
    kept = sign_up_and_log_in(app, "cy@example.org")
    put(kept, "profile", PROFILE)
    logged_in_device(TestClient(app), kept)
    log_out(ana)
    log_out(bob)
    return {"ana": ana, "bob": bob, "cy": kept, "grant": grant}


Snapshot = Callable[[], Copy]


@pytest.fixture
def snapshot(app: FastAPI, settings: Settings) -> Snapshot:
    return lambda: take_copy(app.state.engine, settings.key_dir_resolved)


def test_a_copy_opens_only_what_a_live_grant_shares(
    store: dict[str, Any], snapshot: Snapshot
) -> None:
    copy = snapshot()
    opened = attack(copy)
    # (The command line's seals are among what was tried.)
    assert {"access-token", "refresh-token"} <= {item.what[0] for item in ciphertexts(copy)}
    # Shared with the vendor: the profile opens, through the grant's escrow.
    assert records(opened, store["ana"].id) == document("profile")
    # Never shared: preferences, history, the login email, and every root key.
    assert ("root", store["ana"].id) not in opened
    # Nor the private key deposits are sealed to.
    assert ("deposit key", store["ana"].id) not in opened
    # A live session's seal without its cookie opens nothing either, nor
    # the command line's token row without its tokens.
    assert records(opened, store["cy"].id) == set()
    assert ("root", store["cy"].id) not in opened
    # The control: a server-held customer opens entirely.
    assert records(opened, store["bob"].id) == EVERYTHING


def test_after_the_revocation_nothing_of_the_customer_opens(
    app: FastAPI, store: dict[str, Any], snapshot: Snapshot, vendor: Vendor
) -> None:
    ana: Person = store["ana"]
    _revoke_and_leave(ana)
    assert records(attack(snapshot()), ana.id) == set()
    # And the vendor's token no longer reads.
    r = vendor.client.get("/v1/data", headers=bearer(store["grant"]["access_token"]))
    assert r.status_code == 401


def test_after_narrowing_the_rest_no_longer_opens(
    app: FastAPI, settings: Settings, vendor: Vendor, snapshot: Snapshot
) -> None:
    ana = _person(app, "ana@example.org")
    tokens_for(ana, vendor, "profile:read preferences:read")
    (grant,) = ana.client.get("/api/v1/me/grants").json()["items"]
    log_out(ana)
    assert records(attack(snapshot()), ana.id) == document("profile") | document("preferences")
    log_back_in(ana)
    r = ana.client.patch(f"/api/v1/me/grants/{grant['id']}", json={"scopes": ["profile:read"]})
    assert r.status_code == 200, r.text
    log_out(ana)
    assert records(attack(snapshot()), ana.id) == document("profile")


def test_a_key_store_copied_before_the_revocation_with_a_database_after_opens_nothing(
    app: FastAPI, store: dict[str, Any], settings: Settings
) -> None:
    # The escrow key is destroyed, not only its rows deleted: an old copy of
    # the key store beside a new database finds no escrowed copy to open, and
    # a new key store beside an old database finds no escrow key.
    before = take_copy(app.state.engine, settings.key_dir_resolved)
    ana: Person = store["ana"]
    _revoke_and_leave(ana)
    after = take_copy(app.state.engine, settings.key_dir_resolved)
    assert records(attack(Copy(after.rows, before.key_files)), ana.id) == set()
    assert records(attack(Copy(before.rows, after.key_files)), ana.id) == set()
    # (Both old copies together are a backup taken before: what it shared
    # then, it opens; docs/threat-model.md says so.)
    assert records(attack(before), ana.id) == document("profile")


def test_a_deposit_made_while_the_customer_is_away_does_not_open_from_a_copy(
    app: FastAPI, vendor: Vendor, snapshot: Snapshot
) -> None:
    dee = sign_up_and_log_in(app, "dee@example.org")
    token = tokens_for(dee, vendor, "history:write")["access_token"]
    log_out(dee)
    headers = {**bearer(token), "Idempotency-Key": "order-1001"}
    r = vendor.client.post("/v1/history", json=RECEIPT, headers=headers)
    assert r.status_code == 201, r.text
    copy = snapshot()
    assert len(copy.rows["pending_deposit"]) == 1
    opened = attack(copy)
    assert ("deposit key", dee.id) not in opened
    assert "pending deposit" not in records(opened, dee.id)
    # The control: with what her password gives, the same attack opens it.
    (row,) = [r for r in copy.rows["customer"] if r["id"] == dee.id]
    kek = custody.check(row["password_hash"], dee.password)
    assert kek is not None
    assert "pending deposit" in records(attack(copy, frozenset({kek})), dee.id)


def _through_a_backup(app: FastAPI, settings: Settings, folder: Path) -> Copy:
    """``vrm backup create``, the servers stopped, ``vrm backup restore``
    (what an operator, or a thief with the backup and its key, gets back),
    then a copy of what was restored."""
    env = {
        "VRM_DATA_DIR": str(settings.data_dir),
        "VRM_DATABASE_URL": settings.database_url,
        "VRM_BACKUP_KEY": new_key(),
        "VRM_KEY_CUSTODY": settings.key_custody,
    }
    made = CliRunner().invoke(cli.app, ["backup", "create", str(folder)], env=env)
    assert made.exit_code == 0, made.output
    groupcommit.close(app.state)
    app.state.engine.dispose()
    restored = CliRunner().invoke(cli.app, ["backup", "restore", str(folder), "--force"], env=env)
    assert restored.exit_code == 0, restored.output
    engine = make_engine(settings)
    try:
        return take_copy(engine, settings.key_dir_resolved)
    finally:
        engine.dispose()


def test_a_backup_taken_while_the_grant_lives_opens_only_what_it_shares(
    app: FastAPI, store: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    opened = attack(_through_a_backup(app, settings, tmp_path / "backup"))
    assert records(opened, store["ana"].id) == document("profile")
    assert records(opened, store["cy"].id) == set()
    assert records(opened, store["bob"].id) == EVERYTHING


def test_a_backup_taken_after_the_revocation_opens_nothing_of_the_customer(
    app: FastAPI, store: dict[str, Any], settings: Settings, tmp_path: Path
) -> None:
    ana: Person = store["ana"]
    _revoke_and_leave(ana)
    opened = attack(_through_a_backup(app, settings, tmp_path / "backup"))
    assert records(opened, ana.id) == set()
    assert records(opened, store["bob"].id) == EVERYTHING
