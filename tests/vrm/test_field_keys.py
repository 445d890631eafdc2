"""Per-field keys (vrm/records/sealing.py, docs/keys.md "Per-field keys"):
each field of a document is sealed under its own data key, so that a grant
of ``profile.email`` escrows the email's key alone, and a copy of the
database and the key store taken while the customer is away opens the
email and nothing beside it. Documents sealed whole, from before, still
open, and are sealed again field by field at their customer's log-in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from tests.conftest import Person, log_back_in, log_out, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import (
    PREFERENCES,
    PROFILE,
    feed_token,
    put,
    read_feed,
)
from tests.vrm.at_rest import attack, document, records, take_copy
from vrm.crypto import aead
from vrm.keys.models import KeyEscrow
from vrm.records import sealing
from vrm.records.models import DocumentRecord
from vrm.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_custody": "customer"})


@pytest.fixture
def ana(app: FastAPI) -> Person:
    person = sign_up_and_log_in(app, "ana@example.org")
    put(person, "profile", PROFILE)
    put(person, "preferences", PREFERENCES)
    return person


def _escrowed(app: FastAPI) -> set[str]:
    with Session(app.state.engine) as session:
        return set(session.exec(select(KeyEscrow.category)).all())


def _opened(app: FastAPI, settings: Settings, person: Person) -> set[str]:
    return records(attack(take_copy(app.state.engine, settings.key_dir_resolved)), person.id)


def _row(app: FastAPI, person: Person, category: str) -> DocumentRecord:
    with Session(app.state.engine) as session:
        row = session.get(DocumentRecord, (person.id, category))
        assert row is not None
        return row


def _store(app: FastAPI, person: Person, category: str, ciphertext: bytes) -> None:
    """Write ``ciphertext`` into the person's document row, as someone with
    write access to the database would, and forget what was decrypted."""
    with Session(app.state.engine) as session:
        session.exec(
            update(DocumentRecord)
            .where(
                col(DocumentRecord.customer_id) == person.id,
                col(DocumentRecord.category) == category,
            )
            .values(ciphertext=ciphertext)
        )
        session.commit()
    app.state.vault.derived.forget(person.id)


def test_a_document_is_sealed_field_by_field_and_each_field_under_its_own_key(
    app: FastAPI, ana: Person
) -> None:
    row = _row(app, ana, "profile")
    assert sealing.by_field(row.ciphertext)
    sealed = sealing.unpack(row.ciphertext)
    # The whole document first, for readers of every field...
    assert next(iter(sealed)) == sealing.WHOLE
    whole = sealed.pop(sealing.WHOLE)
    assert sealing.whole_of(row.ciphertext) == whole
    # ...then every field of the catalogue, the empty ones too (birth_date
    # here): a copy does not tell which fields were filled in.
    assert set(sealed) == {name.partition(".")[2] for name in document("profile") - {"profile"}}
    assert "birth_date" not in PROFILE
    for blob in sealed.values():
        assert PROFILE["email"].encode() not in blob
    # Each opens only under its own field's key.
    vault = app.state.vault
    with Session(app.state.engine) as session:
        conn = session.connection()
        email = vault.open(
            conn,
            customer_id=ana.id,
            category="profile.email",
            record_id=sealing.packed_record_id("profile", sealed),
            key_version=row.key_version,
            ciphertext=sealed["email"],
        )
        assert email == f'"{PROFILE["email"]}"'.encode()
        # The whole copy opens under the category's key alone, and holds
        # what the fields hold.
        opened = vault.open(
            conn,
            customer_id=ana.id,
            category="profile",
            record_id="profile",
            key_version=row.key_version,
            ciphertext=whole,
        )
        by_field = sealing.open_fields(
            conn, vault, ana.id, "profile", row.key_version, row.ciphertext, ["email", "phone"]
        )
        assert json.loads(by_field) == {"email": PROFILE["email"], "phone": PROFILE["phone"]}
        assert {k: v for k, v in json.loads(opened).items() if k in ("email", "phone")} == (
            json.loads(by_field)
        )
        with pytest.raises(Exception, match="integrity"):
            vault.open(
                conn,
                customer_id=ana.id,
                category="profile.email",
                record_id="profile",
                key_version=row.key_version,
                ciphertext=whole,
            )
        with pytest.raises(Exception, match="integrity"):
            vault.open(
                conn,
                customer_id=ana.id,
                category="profile.email",
                record_id="profile",
                key_version=row.key_version,
                ciphertext=sealed["phone"],
            )
    # The customer reads their document as they wrote it.
    body = ana.client.get("/api/v1/me/profile").json()
    assert {k: body[k] for k in PROFILE if k != "postal_address"} == {
        k: v for k, v in PROFILE.items() if k != "postal_address"
    }
    assert body["postal_address"]["street_address"] == "Rua Augusta 1"
    assert body["birth_date"] is None


def test_a_grant_of_some_fields_escrows_those_alone_and_a_copy_opens_those_alone(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor
) -> None:
    tokens = tokens_for(ana, vendor, "openid email profile.phone:read")
    log_out(ana)
    assert _escrowed(app) == {"profile.email", "profile.phone"}
    # The vendor reads the two fields while ana is away: the data API,
    # userinfo and the feed.
    headers = bearer(tokens["access_token"])
    r = vendor.client.get("/v1/data", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {"email": PROFILE["email"], "phone": PROFILE["phone"]}
    info = vendor.client.get("/oauth/userinfo", headers=headers)
    assert info.status_code == 200, info.text
    assert info.json()["email"] == PROFILE["email"]
    assert info.json()["phone_number"] == PROFILE["phone"]
    assert "given_name" not in info.json()
    items, _ = read_feed(vendor, feed_token(vendor))
    (snapshot,) = [i for i in items if i["type"] == "snapshot"]
    assert snapshot["data"]["profile"] == {"email": PROFILE["email"], "phone": PROFILE["phone"]}
    # A copy taken now opens the two fields, and not the profile around them.
    assert _opened(app, settings, ana) == {"profile.email", "profile.phone"}


def test_narrowing_to_one_field_leaves_only_that_field_open_in_a_copy(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor
) -> None:
    tokens = tokens_for(ana, vendor, "profile:read")
    (grant,) = ana.client.get("/api/v1/me/grants").json()["items"]
    r = ana.client.patch(
        f"/api/v1/me/grants/{grant['id']}", json={"scopes": ["profile.email:read"]}
    )
    assert r.status_code == 200, r.text
    log_out(ana)
    assert _escrowed(app) == {"profile.email"}
    assert _opened(app, settings, ana) == {"profile.email"}
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {"email": PROFILE["email"]}


def test_a_vendor_read_opens_only_the_granted_fields_even_with_the_customer_here(
    app: FastAPI, ana: Person, vendor: Vendor, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tokens_for(ana, vendor, "profile.email:read preferences.dietary:read")
    vault = app.state.vault
    opened: list[str] = []
    real_open = vault.open_each

    def spy(conn: Any, **kw: Any) -> list[bytes]:
        opened.extend(name for name, *_ in kw["records"])
        result: list[bytes] = real_open(conn, **kw)
        return result

    monkeypatch.setattr(vault, "open_each", spy)
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    # ana is logged in, every key of hers opens; the read opened two.
    assert sorted(opened) == ["preferences.dietary", "profile.email"]
    assert r.json()["preferences"] == {"dietary": PREFERENCES["dietary"]}


def _seal_whole_as_before(app: FastAPI, person: Person, grant_id: str) -> None:
    """Make ``person`` a customer from before per-field keys, while their
    session holds their root key: their documents sealed whole under the
    category's key, and their grant escrowing the profile's key whole, as
    it did then."""
    vault = app.state.vault
    with Session(app.state.engine) as session:
        conn = session.connection()
        for category in ("profile", "preferences"):
            row = session.get(DocumentRecord, (person.id, category))
            assert row is not None
            plaintext = sealing.open_fields(
                conn, vault, person.id, category, row.key_version, row.ciphertext, None
            )
            whole = vault.seal(
                session,
                customer_id=person.id,
                category=category,
                record_id=category,
                plaintext=plaintext,
            )
            session.exec(
                update(DocumentRecord)
                .where(
                    col(DocumentRecord.customer_id) == person.id,
                    col(DocumentRecord.category) == category,
                )
                .values(ciphertext=whole.ciphertext, key_version=whole.key_version)
            )
        session.exec(delete(KeyEscrow))
        vault.escrow(session, holder_id=grant_id, customer_id=person.id, keys={"profile"})
        session.commit()
    vault._drop_cached(person.id)


def test_a_customer_from_before_is_sealed_by_field_at_log_in_and_their_grant_escrows_again(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor
) -> None:
    tokens = tokens_for(ana, vendor, "profile.email:read")
    written = ana.client.get("/api/v1/me/profile").json()
    _seal_whole_as_before(app, ana, tokens["grant_id"])
    revision = _row(app, ana, "profile").revision
    feed = feed_token(vendor)
    _, cursors = read_feed(vendor, feed)
    log_out(ana)
    # Before: her grant reads through the whole profile's escrowed key, and
    # a copy opens the whole profile (the limit this change lifts).
    headers = bearer(tokens["access_token"])
    assert vendor.client.get("/v1/data", headers=headers).json()["profile"] == {
        "email": PROFILE["email"]
    }
    assert _opened(app, settings, ana) == {"profile"}

    log_back_in(ana)
    log_out(ana)
    for category in ("profile", "preferences"):
        assert sealing.by_field(_row(app, ana, category).ciphertext)
    assert _row(app, ana, "profile").revision == revision + 1
    # After: the grant escrows the email's key alone, reads on while she is
    # away, and a copy opens the email alone.
    assert _escrowed(app) == {"profile.email"}
    assert vendor.client.get("/v1/data", headers=headers).json()["profile"] == {
        "email": PROFILE["email"]
    }
    assert _opened(app, settings, ana) == {"profile.email"}
    # Nothing changed for the vendor's feed: a new sealing is not a change.
    items, _ = read_feed(vendor, feed, cursors[-1])
    assert items == []
    # And her documents read as they were.
    log_back_in(ana)
    assert ana.client.get("/api/v1/me/profile").json() == written
    assert ana.client.get("/api/v1/me/preferences").json()["dietary"] == PREFERENCES["dietary"]


@pytest.mark.parametrize("custody_of_keys", ["server"])
def test_a_server_held_customer_from_before_reads_then_is_sealed_by_field_at_log_in(
    app: FastAPI, settings: Settings, vendor: Vendor
) -> None:
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    bob = sign_up_and_log_in(app, "bob@example.org")
    put(bob, "profile", PROFILE)
    tokens = tokens_for(bob, vendor, "profile.given_name:read")
    _seal_whole_as_before(app, bob, tokens["grant_id"])
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.json()["profile"] == {"given_name": PROFILE["given_name"]}
    log_back_in(bob)
    assert sealing.by_field(_row(app, bob, "profile").ciphertext)
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.json()["profile"] == {"given_name": PROFILE["given_name"]}


def test_a_document_sealed_by_field_without_the_whole_copy_opens_and_gains_it_at_log_in(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # As the first per-field sealing wrote it: the fields alone.
    tokens = tokens_for(ana, vendor, "profile:read")
    row = _row(app, ana, "profile")
    fields = sealing.unpack(row.ciphertext)
    del fields[sealing.WHOLE]
    _store(app, ana, "profile", sealing.pack(fields.items()))
    assert not sealing.is_current(_row(app, ana, "profile").ciphertext)
    before = ana.client.get("/api/v1/me/profile").json()
    assert before["email"] == PROFILE["email"]
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.json()["profile"]["email"] == PROFILE["email"]
    log_out(ana)
    log_back_in(ana)
    assert sealing.is_current(_row(app, ana, "profile").ciphertext)
    assert ana.client.get("/api/v1/me/profile").json() == before
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.json()["profile"]["email"] == PROFILE["email"]


def test_a_damaged_sealed_document_is_an_integrity_failure_not_a_crash(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    tokens = tokens_for(ana, vendor, "profile.email:read")
    row = _row(app, ana, "profile")
    whole = sealing.whole_of(row.ciphertext)
    assert whole is not None
    at = row.ciphertext.index(whole)

    # The packing cut short: a reader of some fields fails.
    _store(app, ana, "profile", row.ciphertext[:-3])
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 500
    assert r.json()["type"].endswith("integrity")
    assert PROFILE["email"] not in r.text
    # The whole copy changed: the customer, who reads it, fails.
    flipped = bytes([whole[-1] ^ 1])
    _store(
        app,
        ana,
        "profile",
        row.ciphertext[: at + len(whole) - 1] + flipped + row.ciphertext[at + len(whole) :],
    )
    r = ana.client.get("/api/v1/me/profile")
    assert r.status_code == 500
    assert r.json()["type"].endswith("integrity")
    # Its length made to run past the end: malformed, for every reader.
    _store(
        app,
        ana,
        "profile",
        row.ciphertext[: at - 4] + (len(row.ciphertext)).to_bytes(4, "big") + whole,
    )
    r = ana.client.get("/api/v1/me/profile")
    assert r.status_code == 500
    assert r.json()["type"].endswith("integrity")


def test_two_fields_swapped_in_the_packing_open_neither(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # Each field's seal binds its own key: the email's sealed value moved
    # into the phone's place (and back) does not read as the phone.
    tokens = tokens_for(ana, vendor, "profile.phone:read")
    row = _row(app, ana, "profile")
    sealed = sealing.unpack(row.ciphertext)
    sealed["email"], sealed["phone"] = sealed["phone"], sealed["email"]
    _store(app, ana, "profile", sealing.pack(sealed.items()))
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 500
    assert r.json()["detail"] == "a stored profile record failed its integrity check"
    assert PROFILE["email"] not in r.text


def test_a_field_dropped_from_the_packing_leaves_none_of_the_others_opening(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # Someone with write access to the database drops the phone, so that
    # it would read as never filled in to a vendor granted it: the other
    # fields no longer open for it.
    tokens = tokens_for(ana, vendor, "profile.email:read profile.phone:read")
    row = _row(app, ana, "profile")
    kept = [(n, b) for n, b in sealing.unpack(row.ciphertext).items() if n != "phone"]
    _store(app, ana, "profile", sealing.pack(kept))
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 500
    assert r.json()["detail"] == "a stored profile record failed its integrity check"
    assert PROFILE["email"] not in r.text


def test_a_value_sealed_whole_is_never_taken_for_packed_fields() -> None:
    # A blob sealed whole begins with its format byte; packed fields never do.
    key = aead.new_key()
    for _ in range(64):
        assert not sealing.by_field(aead.seal(key, b"{}", b"aad"))
    assert sealing.pack([])[:1] not in (aead.FORMAT_V1, aead.FORMAT_V2)
    with pytest.raises(sealing.Malformed):
        sealing.unpack(sealing.pack([("email", b"x" * 40)])[:-1])
