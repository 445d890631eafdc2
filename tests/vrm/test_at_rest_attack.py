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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, select

import vrm.models  # noqa: F401 - every table on the metadata
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.consent.test_device_flow import logged_in_device
from tests.kit import bearer
from tests.vendor_api.helpers import PREFERENCES, PROFILE, RECEIPT, add_event, put
from vrm.catalogue import ACCOUNT
from vrm.crypto import aead
from vrm.keys import custody, sealed_box
from vrm.keys.custody import _credential_aad, _root_aad
from vrm.keys.sealed_box import _info, _private_aad
from vrm.keys.service import escrow_aad, record_aad, wrap_aad
from vrm.settings import Settings

# What opens what: a ciphertext, the associated data it was sealed with,
# and what its plaintext is (a key, for whom; or a record).
Gives = tuple[str, ...]
# How a ciphertext is opened with a key: (key, ciphertext, associated data).
Opener = Callable[[bytes, bytes, bytes], bytes]


def _open_box(private_key: bytes, ciphertext: bytes, info: bytes) -> bytes:
    """A sealed box (vrm/keys/sealed_box.py) tried with a candidate X25519
    private key: any 32 bytes are one."""
    try:
        return sealed_box.SUITE.decrypt(
            ciphertext, X25519PrivateKey.from_private_bytes(private_key), info=info
        )
    except (InvalidTag, ValueError):
        raise aead.SealError("does not open") from None


@dataclass
class Sealed:
    what: Gives
    ciphertext: bytes
    aad: bytes
    # The key this ciphertext yields when it opens, named (None: a record).
    yields: Gives | None = None
    opener: Opener = aead.open_sealed


@dataclass
class Copy:
    """What the attacker took: every row of every table, every key file."""

    rows: dict[str, list[dict[str, Any]]]
    key_files: dict[str, bytes]
    opened: dict[Gives, bytes] = field(default_factory=dict)


def take_copy(engine: Engine, key_dir: Path) -> Copy:
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        rows = {
            name: [dict(r._mapping) for r in conn.execute(select(table))]
            for name, table in metadata.tables.items()
        }
    key_files = {
        p.relative_to(key_dir).as_posix(): p.read_bytes()
        for p in sorted(key_dir.rglob("*"))
        if p.is_file()
    }
    return Copy(rows, key_files)


def ciphertexts(copy: Copy) -> list[Sealed]:
    """Every sealed value the copy holds, with the associated data the code
    (which the attacker reads) would give it."""
    found: list[Sealed] = []
    for r in copy.rows["data_key"]:
        aad = wrap_aad(r["customer_id"], r["category"], r["version"], r["root_version"])
        name = ("data key", r["customer_id"], r["category"], str(r["version"]))
        found.append(Sealed(name, r["wrapped"], aad, yields=name))
    for r in copy.rows["key_escrow"]:
        aad = escrow_aad(r["holder_id"], r["customer_id"], r["category"], r["version"])
        name = ("data key", r["customer_id"], r["category"], str(r["version"]))
        found.append(Sealed(("escrow", r["holder_id"], *name), r["wrapped"], aad, yields=name))
    for r in copy.rows["customer"]:
        for by in ("password", "recovery"):
            if r[f"root_by_{by}"] is not None:
                found.append(
                    Sealed(
                        (f"root by {by}", r["id"]),
                        r[f"root_by_{by}"],
                        _root_aad(r["id"], by),
                        yields=("root", r["id"]),
                    )
                )
        found.append(
            Sealed(
                ("record", r["id"], ACCOUNT),
                r["email_ct"],
                record_aad(r["id"], ACCOUNT, r["id"], r["key_version"]),
            )
        )
        if r["deposit_private_key"] is not None:
            found.append(
                Sealed(
                    ("deposit key", r["id"]),
                    r["deposit_private_key"],
                    _private_aad(r["id"]),
                    yields=("deposit key", r["id"]),
                )
            )
    for r in copy.rows["login_session"]:
        if r["root_sealed"] is not None:
            aad = _credential_aad("session", r["customer_id"], r["id"])
            found.append(
                Sealed(
                    ("session", r["id"]), r["root_sealed"], aad, yields=("root", r["customer_id"])
                )
            )
    for r in copy.rows["oauth_token"]:
        for kind, column in (
            ("access-token", "root_by_access"),
            ("refresh-token", "root_by_refresh"),
        ):
            if r[column] is not None:
                aad = _credential_aad(kind, r["customer_id"], r["id"])
                found.append(
                    Sealed((kind, r["id"]), r[column], aad, yields=("root", r["customer_id"]))
                )
    for r in copy.rows["document_record"]:
        aad = record_aad(r["customer_id"], r["category"], r["category"], r["key_version"])
        found.append(Sealed(("record", r["customer_id"], r["category"]), r["ciphertext"], aad))
    for r in copy.rows["history_record"]:
        aad = record_aad(r["customer_id"], "history", r["id"], r["key_version"])
        found.append(Sealed(("record", r["customer_id"], "history"), r["ciphertext"], aad))
    for r in copy.rows["pending_deposit"]:
        found.append(
            Sealed(
                ("record", r["customer_id"], "pending deposit"),
                r["sealed"],
                _info(r["customer_id"]),
                opener=_open_box,
            )
        )
    return found


def attack(copy: Copy, known: frozenset[bytes] = frozenset()) -> set[Gives]:
    """Every key in the copy (and any ``known`` besides) against every
    ciphertext, until a fixed point; returns what opened."""
    keys = {data for data in copy.key_files.values() if len(data) == aead.KEY_BYTES} | known
    sealed = ciphertexts(copy)
    opened: set[Gives] = set()
    progress = True
    while progress:
        progress = False
        for item in sealed:
            if item.what in opened:
                continue
            for key in list(keys):
                try:
                    plaintext = item.opener(key, item.ciphertext, item.aad)
                except aead.SealError:
                    continue
                opened.add(item.what)
                if item.yields is not None:
                    keys.add(plaintext)
                progress = True
                break
    return opened


def records(opened: set[Gives], customer_id: str) -> set[str]:
    return {w[2] for w in opened if w[0] == "record" and w[1] == customer_id}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_custody": "customer"})


def _person(app: FastAPI, email: str) -> Person:
    person = sign_up_and_log_in(app, email)
    put(person, "profile", PROFILE)
    put(person, "preferences", PREFERENCES)
    add_event(person, occurred_at="2026-11-01T10:00:00Z", notes="never shared")
    return person


def _log_out(person: Person) -> None:
    assert person.client.delete("/api/v1/session").status_code == 204


def _log_in(person: Person) -> None:
    r = person.client.post(
        "/api/v1/session", json={"email": person.email, "password": person.password}
    )
    assert r.status_code == 200, r.text


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
    _log_out(ana)
    _log_out(bob)
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
    assert records(opened, store["ana"].id) == {"profile"}
    # Never shared: preferences, history, the login email, and every root key.
    assert ("root", store["ana"].id) not in opened
    # Nor the private key deposits are sealed to.
    assert ("deposit key", store["ana"].id) not in opened
    # A live session's seal without its cookie opens nothing either, nor
    # the command line's token row without its tokens.
    assert records(opened, store["cy"].id) == set()
    assert ("root", store["cy"].id) not in opened
    # The control: a server-held customer opens entirely.
    assert records(opened, store["bob"].id) == {ACCOUNT, "profile", "preferences", "history"}


def test_after_the_revocation_nothing_of_the_customer_opens(
    app: FastAPI, store: dict[str, Any], snapshot: Snapshot, vendor: Vendor
) -> None:
    ana: Person = store["ana"]
    _log_in(ana)
    (grant,) = ana.client.get("/api/v1/me/grants").json()["items"]
    assert ana.client.delete(f"/api/v1/me/grants/{grant['id']}").status_code == 204
    _log_out(ana)
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
    _log_out(ana)
    assert records(attack(snapshot()), ana.id) == {"profile", "preferences"}
    _log_in(ana)
    r = ana.client.patch(f"/api/v1/me/grants/{grant['id']}", json={"scopes": ["profile:read"]})
    assert r.status_code == 200, r.text
    _log_out(ana)
    assert records(attack(snapshot()), ana.id) == {"profile"}


def test_a_key_store_copied_before_the_revocation_with_a_database_after_opens_nothing(
    app: FastAPI, store: dict[str, Any], settings: Settings
) -> None:
    # The escrow key is destroyed, not only its rows deleted: an old copy of
    # the key store beside a new database finds no escrowed copy to open, and
    # a new key store beside an old database finds no escrow key.
    before = take_copy(app.state.engine, settings.key_dir_resolved)
    ana: Person = store["ana"]
    _log_in(ana)
    (grant,) = ana.client.get("/api/v1/me/grants").json()["items"]
    assert ana.client.delete(f"/api/v1/me/grants/{grant['id']}").status_code == 204
    _log_out(ana)
    after = take_copy(app.state.engine, settings.key_dir_resolved)
    assert records(attack(Copy(after.rows, before.key_files)), ana.id) == set()
    assert records(attack(Copy(before.rows, after.key_files)), ana.id) == set()
    # (Both old copies together are a backup taken before: what it shared
    # then, it opens; docs/threat-model.md says so.)
    assert records(attack(before), ana.id) == {"profile"}


def test_a_deposit_made_while_the_customer_is_away_does_not_open_from_a_copy(
    app: FastAPI, vendor: Vendor, snapshot: Snapshot
) -> None:
    dee = sign_up_and_log_in(app, "dee@example.org")
    token = tokens_for(dee, vendor, "history:write")["access_token"]
    _log_out(dee)
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
