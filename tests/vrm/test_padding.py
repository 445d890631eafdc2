"""Sealed values are padded to buckets, inside the AEAD.

A stolen database must not give a value's exact length (a 23-character
email sealed without padding is a 52-byte blob). Format 2 pads before
sealing; format 1 blobs, written before it, still open.
"""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi import FastAPI
from sqlmodel import Session, col, select

from tests.conftest import Person, sign_up_and_log_in
from tests.kit import assert_problem
from vrm.accounts.models import Customer
from vrm.catalogue import ACCOUNT
from vrm.crypto import aead
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.keys.service import record_aad, wrap_aad

AAD = aead.associated_data("vrm-record/1", "c" * 32, "profile", "profile", 1)
OVERHEAD = 1 + aead.NONCE_BYTES + aead.TAG_BYTES


@pytest.fixture
def key() -> bytes:
    return aead.new_key()


def _raw(key: bytes, version: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """A blob built by hand: what another writer, or an old one, stored."""
    nonce = os.urandom(aead.NONCE_BYTES)
    return version + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


@pytest.mark.parametrize(
    ("length", "bucket"),
    [
        (0, 32),
        (31, 32),  # the marker byte fills the bucket
        (32, 64),
        (200, 224),
        (255, 256),
        (511, 512),
        (512, 576),  # from here on, eight buckets per power of two
        (1023, 1024),
        (1024, 1152),
        (5000, 5120),
        (4 * 1024 * 1024, 4 * 1024 * 1024 + 512 * 1024),
    ],
)
def test_plaintexts_are_padded_to_their_bucket(length: int, bucket: int) -> None:
    assert aead.padded_size(length) == bucket


def test_every_length_round_trips_at_its_bucket_size(key: bytes) -> None:
    for length in range(0, 1200):
        plaintext = os.urandom(length)
        blob = aead.seal(key, plaintext, AAD)
        assert blob[:1] == aead.FORMAT_V2
        assert len(blob) == OVERHEAD + aead.padded_size(length)
        # Trailing zeros and a trailing marker byte are the value's own.
        assert aead.open_sealed(key, blob, AAD) == plaintext
    for plaintext in (b"\x00" * 40, b"x\x80", b"\x80\x00\x00", b""):
        assert aead.open_sealed(key, aead.seal(key, plaintext, AAD), AAD) == plaintext


def test_padding_stays_under_an_eighth_above_the_small_buckets() -> None:
    worst = max((aead.padded_size(n) - n) / n for n in range(512, 70_000))
    assert worst <= 0.125


def test_emails_of_common_lengths_seal_to_one_size(key: bytes) -> None:
    sizes = {len(aead.seal(key, b"x" * (n - 12) + b"@example.org", AAD)) for n in range(14, 32)}
    assert sizes == {OVERHEAD + 32}


def test_a_format_1_blob_still_opens(key: bytes) -> None:
    blob = _raw(key, aead.FORMAT_V1, b"written before padding", AAD)
    assert aead.open_sealed(key, blob, AAD) == b"written before padding"


@pytest.mark.parametrize(
    "padded",
    [
        b"value",  # no marker at all
        b"value\x00\x00\x00",  # zeros without a marker
        b"value\x80\x00\x01",  # a byte after the marker that is not zero
        b"",  # nothing at all
        b"\x00" * 32,
    ],
    ids=["no-marker", "zeros-only", "byte-after-marker", "empty", "a-bucket-of-zeros"],
)
def test_a_blob_with_malformed_padding_fails_like_a_tampered_one(key: bytes, padded: bytes) -> None:
    blob = _raw(key, aead.FORMAT_V2, padded, aead.FORMAT_V2 + AAD)
    with pytest.raises(aead.SealError, match="malformed"):
        aead.open_sealed(key, blob, AAD)


def test_a_blob_relabelled_to_the_other_format_fails_authentication(key: bytes) -> None:
    padded = aead.seal(key, b"value", AAD)
    with pytest.raises(aead.SealError, match="authentication"):
        aead.open_sealed(key, aead.FORMAT_V1 + padded[1:], AAD)
    old = _raw(key, aead.FORMAT_V1, b"value\x80" + bytes(26), AAD)
    with pytest.raises(aead.SealError, match="authentication"):
        aead.open_sealed(key, aead.FORMAT_V2 + old[1:], AAD)


def test_an_unknown_format_is_malformed(key: bytes) -> None:
    blob = aead.seal(key, b"value", AAD)
    with pytest.raises(aead.SealError, match="malformed"):
        aead.open_sealed(key, b"\x03" + blob[1:], AAD)


# -- through the store ---------------------------------------------------


def _account_key(app: FastAPI, session: Session, customer_id: str) -> bytes:
    row = session.get(DataKey, (customer_id, ACCOUNT, 1))
    assert row is not None
    aad = wrap_aad(customer_id, ACCOUNT, 1, row.root_version)
    key: bytes = app.state.vault.keystore.unwrap(customer_id, row.root_version, row.wrapped, aad)
    return key


def test_login_emails_of_different_lengths_are_stored_at_one_size(app: FastAPI) -> None:
    people = [sign_up_and_log_in(app, email) for email in ("al@ex.io", "maria.joao.silva@mail.pt")]
    with Session(app.state.engine) as session:
        stored = session.exec(select(Customer.email_ct)).all()
        wrapped = session.exec(select(DataKey.wrapped)).all()
    assert sorted(len(ct) for ct in stored) == [OVERHEAD + 32] * 2
    assert {blob[:1] for blob in [*stored, *wrapped]} == {aead.FORMAT_V2}
    for person in people:
        person.client.close()


def test_history_events_with_notes_of_different_lengths_are_stored_at_few_sizes(
    ana: Person, app: FastAPI
) -> None:
    # 64 notes, one of each length from 1 to 64 characters: unpadded, 64
    # sizes; in 32-byte buckets, whatever the rest of the event weighs,
    # they span at most three.
    event = {"vendor": "Shop", "type": "purchase", "occurred_at": "2024-05-01T10:00:00Z"}
    for n in range(1, 65):
        r = ana.client.post("/api/v1/me/history", json={**event, "notes": "x" * n})
        assert r.status_code == 201, r.text
    with Session(app.state.engine) as session:
        stored = session.exec(select(HistoryRecord.ciphertext)).all()
    sizes = {len(ct) for ct in stored}
    assert len(stored) == 64
    assert len(sizes) <= 3
    assert all(size % 32 == min(sizes) % 32 for size in sizes)


# Server custody: the email is rewritten with the data key, which this
# test reaches through the root key file in the key store.
@pytest.mark.parametrize("custody_of_keys", ["server"])
def test_a_login_email_stored_in_format_1_still_reads(ana: Person, app: FastAPI) -> None:
    with Session(app.state.engine) as session:
        customer = session.get(Customer, ana.id)
        assert customer is not None
        key = _account_key(app, session, ana.id)
        aad = record_aad(ana.id, ACCOUNT, ana.id, customer.key_version)
        customer.email_ct = _raw(key, aead.FORMAT_V1, ana.email.encode(), aad)
        session.add(customer)
        session.commit()
    r = ana.client.get("/api/v1/me")
    assert r.status_code == 200, r.text
    assert r.json()["email"] == ana.email


# Server custody: the email is rewritten with the data key, which this
# test reaches through the root key file in the key store.
@pytest.mark.parametrize("custody_of_keys", ["server"])
def test_a_stored_email_with_malformed_padding_is_an_integrity_failure(
    ana: Person, app: FastAPI
) -> None:
    with Session(app.state.engine) as session:
        customer = session.exec(select(Customer).where(col(Customer.id) == ana.id)).one()
        key = _account_key(app, session, ana.id)
        aad = aead.FORMAT_V2 + record_aad(ana.id, ACCOUNT, ana.id, customer.key_version)
        customer.email_ct = _raw(key, aead.FORMAT_V2, ana.email.encode(), aad)
        session.add(customer)
        session.commit()
    r = ana.client.get("/api/v1/me")
    assert_problem(r, 500, "integrity", detail="a stored account record failed its integrity check")
    assert ana.email not in r.text
