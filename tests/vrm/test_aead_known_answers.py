"""The stored format of sealed values, pinned byte for byte.

Sealing and opening are written together, so a change to the nonce length,
the format byte, the padding or the associated-data encoding would still
round-trip, and every record, data key and backup already written would
stop opening. These known answers were computed once from the format as
documented in vrm/crypto/aead.py and vrm/keys/service.py; they must never
be regenerated to make a change pass.
"""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from vrm.crypto import aead
from vrm.keys.service import record_aad, wrap_aad

KEY = bytes(range(32))
NONCE = bytes.fromhex("0f0e0d0c0b0a090807060504")
PLAINTEXT = b"ana@example.org"
RECORD_AAD = b'["vrm-record/1","cccc-cust","profile","r-1","3"]'
WRAP_AAD = b'["vrm-data-key/1","cccc-cust","profile","2","1"]'

# Format 2: 0x02, nonce, AES-256-GCM of the value padded to 32 bytes
# (0x80 then zeros), with 0x02 + associated data bound.
FORMAT_2 = bytes.fromhex(
    "02"
    "0f0e0d0c0b0a090807060504"
    "c55ed01c3eafcec39bb3d47157e8ee8169661f60cf59f1645649aeff320ab02a"
    "6d1a4411e3c44d78e99636db6dceee3d"
)
# Format 1 (written before padding): 0x01, nonce, AES-256-GCM of the value
# with the associated data alone bound.
FORMAT_1 = bytes.fromhex(
    "010f0e0d0c0b0a090807060504c55ed01c3eafcec39bb3d47157e8ee202cff585213bfa6b395c2fb9624c6ab"
)
# The shortest blob there is: format 1, an empty value, nonce and tag only.
FORMAT_1_EMPTY = bytes.fromhex("010f0e0d0c0b0a090807060504eee0da58367975664ff0a2df0d693618")


@pytest.fixture
def fixed_nonce(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make the next nonce NONCE; record how many random bytes were asked for."""
    asked: list[int] = []

    def urandom(n: int) -> bytes:
        asked.append(n)
        return NONCE[:n]

    # aead draws its nonces from os.urandom, the only randomness it uses.
    monkeypatch.setattr(os, "urandom", urandom)
    return asked


def test_associated_data_is_a_compact_json_list_of_strings() -> None:
    assert record_aad("cccc-cust", "profile", "r-1", 3) == RECORD_AAD
    assert wrap_aad("cccc-cust", "profile", 2, 1) == WRAP_AAD
    # No separator can be smuggled in: a comma in a part stays inside it.
    assert aead.associated_data("a,b", "c") == b'["a,b","c"]'
    assert aead.associated_data("a", "b,c") == b'["a","b,c"]'


def test_sealing_writes_format_2_exactly(fixed_nonce: list[int]) -> None:
    assert aead.seal(KEY, PLAINTEXT, RECORD_AAD) == FORMAT_2
    assert fixed_nonce == [12]  # one 96-bit nonce per value (NIST SP 800-38D)


def test_a_stored_format_2_value_opens() -> None:
    assert aead.open_sealed(KEY, FORMAT_2, RECORD_AAD) == PLAINTEXT


def test_a_stored_format_1_value_still_opens() -> None:
    assert aead.open_sealed(KEY, FORMAT_1, RECORD_AAD) == PLAINTEXT
    assert aead.open_sealed(KEY, FORMAT_1_EMPTY, RECORD_AAD) == b""


@pytest.mark.parametrize("blob", [FORMAT_1, FORMAT_2])
def test_a_stored_value_opens_only_where_it_was_sealed_for(blob: bytes) -> None:
    with pytest.raises(aead.SealError, match="^ciphertext failed authentication$"):
        aead.open_sealed(KEY, blob, record_aad("cccc-cust", "profile", "r-2", 3))
    with pytest.raises(aead.SealError, match="^ciphertext failed authentication$"):
        aead.open_sealed(bytes(32), blob, RECORD_AAD)


def test_a_value_relabelled_to_the_other_format_fails_authentication() -> None:
    for blob in (b"\x01" + FORMAT_2[1:], b"\x02" + FORMAT_1[1:], b"\x02" + FORMAT_1_EMPTY[1:]):
        with pytest.raises(aead.SealError, match="^ciphertext failed authentication$"):
            aead.open_sealed(KEY, blob, RECORD_AAD)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        FORMAT_1_EMPTY[:-1],  # one byte shorter than nonce and tag
        b"\x03" + FORMAT_2[1:],  # a format that does not exist
        b"\x00" + FORMAT_2[1:],
    ],
)
def test_a_blob_of_no_known_shape_is_malformed(blob: bytes) -> None:
    with pytest.raises(aead.SealError, match="^sealed blob is malformed$"):
        aead.open_sealed(KEY, blob, RECORD_AAD)


@pytest.mark.parametrize(
    "padded",
    [
        PLAINTEXT + b"\x80" + b"X" * 16,  # something else than zeros after the marker
        PLAINTEXT + b"\x80" + bytes(15) + b"X",
        PLAINTEXT + bytes(17),  # no marker
        b"",
    ],
)
def test_format_2_padding_is_a_marker_then_zeros_or_the_blob_is_malformed(padded: bytes) -> None:
    """Authentic ciphertext whose padding is wrong (another writer's bug)
    is refused, never opened with part of its padding left on or cut off."""
    blob = b"\x02" + NONCE + AESGCM(KEY).encrypt(NONCE, padded, b"\x02" + RECORD_AAD)
    with pytest.raises(aead.SealError, match="^sealed blob is malformed$"):
        aead.open_sealed(KEY, blob, RECORD_AAD)


def test_a_new_counter_starts_at_zero_and_counts_each_operation() -> None:
    stats = aead.CryptoStats()
    assert (stats.operations, stats.seconds) == (0, 0.0)
    stats.add(0.25)
    stats.add(0.5)
    assert (stats.operations, stats.seconds) == (2, 0.75)


def test_sealing_and_opening_are_counted_for_the_benchmarks() -> None:
    aead.STATS.reset()
    assert (aead.STATS.operations, aead.STATS.seconds) == (0, 0.0)
    blob = aead.seal(KEY, PLAINTEXT, RECORD_AAD)
    aead.open_sealed(KEY, blob, RECORD_AAD)
    with pytest.raises(aead.SealError):
        aead.open_sealed(KEY, b"", RECORD_AAD)  # a failure costs time too
    assert aead.STATS.operations == 3
    assert 0.0 < aead.STATS.seconds < 1.0
    aead.STATS.reset()
    assert (aead.STATS.operations, aead.STATS.seconds) == (0, 0.0)


def test_new_keys_are_random_256_bit_keys() -> None:
    first, second = aead.new_key(), aead.new_key()
    assert len(first) == len(second) == 32
    assert first != second


@settings(max_examples=500, deadline=None)
@given(parts=st.lists(st.one_of(st.text(max_size=12), st.integers()), min_size=1, max_size=6))
def test_associated_data_is_the_json_array_of_its_parts_whatever_they_hold(
    parts: list[str | int],
) -> None:
    # Written without json.dumps where it can be: the bytes must not change,
    # or every record sealed before would fail to open.
    expected = json.dumps([str(p) for p in parts], separators=(",", ":")).encode()
    assert aead.associated_data(*parts) == expected
