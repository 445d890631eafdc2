"""AES-256-GCM sealing with associated data, padded to a bucket size.

A sealed blob is ``b"\\x02" + nonce(12) + ciphertext_and_tag`` (format 2).
Its plaintext is padded inside the AEAD, ISO/IEC 7816-4 style (one 0x80
byte, then zeros), to a bucket size, so a stolen database shows which
bucket a value falls in, not its exact length (a 23-character email sealed
without padding is a 52-byte blob). The padding is authenticated with the
rest: a blob whose padding is malformed fails like a tampered one.

Buckets (:func:`padded_size`): multiples of 32 bytes below 512, then eight
steps per power of two (at most 12.5% overhead). Every email and nearly
every record falls in one of a few 32-byte buckets; the measured cost is in
docs/keys.md (Padding).

Format 1 (``b"\\x01" + nonce + ciphertext_and_tag``, no padding) is still
opened, for data written before format 2; nothing writes it any more. The
format byte is bound into format 2's associated data, so a blob relabelled
from one format to the other fails authentication instead of opening with
its padding left on.

The associated data is the JSON encoding of a list of strings (unambiguous,
unlike joining with a separator), so a ciphertext opens only at the exact
place it was sealed for: the same customer, category, record and key
version.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = b"\x01"
FORMAT_V2 = b"\x02"
NONCE_BYTES = 12  # NIST SP 800-38D: 96-bit random nonces
TAG_BYTES = 16
KEY_BYTES = 32
# Padding (ISO/IEC 7816-4): a marker byte, then zeros up to the bucket.
PAD_MARKER = b"\x80"
SMALL_STEP = 32
STEPS_PER_DOUBLING_LOG2 = 3  # 8 buckets per power of two: <= 12.5% overhead


class SealError(Exception):
    """A sealed blob is malformed, was altered, or belongs elsewhere."""


class CryptoStats:
    """Time spent sealing and opening, for benchmarks (bench/store.py)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.operations = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
            self.operations += 1

    def reset(self) -> None:
        with self._lock:
            self.seconds = 0.0
            self.operations = 0


STATS = CryptoStats()


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


# What json.dumps writes as it is: printable ASCII but for the quote and
# the backslash.
_AS_IS = re.compile(r"[ !#-\[\]-~]*")


def associated_data(*parts: str | int) -> bytes:
    """The parts as a JSON array of strings, compact. Ids, names and numbers
    are written without json.dumps, which costs more than the AES-GCM open
    of a small record; the bytes are the same."""
    texts = [str(p) for p in parts]
    # Every part is written as it is when all of them together are.
    if _AS_IS.fullmatch("".join(texts)):
        return ('["' + '","'.join(texts) + '"]').encode()
    return json.dumps(texts, separators=(",", ":")).encode()


def padded_size(length: int) -> int:
    """The bucket a plaintext of ``length`` bytes is padded to (the marker
    byte included, so the result is always larger than ``length``).

    Short values, where an exact length identifies most (an email, a name),
    share 32-byte buckets; above 512 bytes the step grows with the value,
    an eighth of its power of two, so the overhead stays under 12.5% while
    the length leaks about three bits within each doubling."""
    needed = length + 1
    step = max(SMALL_STEP, 1 << max(0, needed.bit_length() - 1 - STEPS_PER_DOUBLING_LOG2))
    return -(-needed // step) * step


def pad(plaintext: bytes) -> bytes:
    """``plaintext`` padded to its bucket (:func:`padded_size`), for a
    cipher that does not pad (vrm/keys/sealed_box.py)."""
    zeros = padded_size(len(plaintext)) - len(plaintext) - 1
    return plaintext + PAD_MARKER + bytes(zeros)


def unpad(padded: bytes) -> bytes:
    # Runs only on authenticated plaintext, so its timing tells an attacker
    # nothing they could not read (no padding oracle: a forged blob fails
    # the tag before it gets here).
    body = padded.rstrip(b"\x00")
    if body[-1:] != PAD_MARKER:
        raise SealError("sealed blob is malformed")
    return body[:-1]


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    started = time.perf_counter()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, pad(plaintext), FORMAT_V2 + aad)
    blob = FORMAT_V2 + nonce + sealed
    STATS.add(time.perf_counter() - started)
    return blob


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    started = time.perf_counter()
    try:
        return _open(AESGCM(key), blob, aad)
    finally:
        STATS.add(time.perf_counter() - started)


def open_many(key: bytes, sealed: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """Each (blob, aad) opened with one key, as :func:`open_sealed` would:
    the key is set up once, which is much of the cost of a small record."""
    started = time.perf_counter()
    try:
        cipher = AESGCM(key)
        return [_open(cipher, blob, aad) for blob, aad in sealed]
    finally:
        STATS.add(time.perf_counter() - started)


def open_each(sealed: Iterable[tuple[bytes, bytes, bytes]]) -> list[bytes]:
    """Each (key, blob, aad) opened as :func:`open_sealed` would, timed
    once for them all: the fields of a document, each under its own key."""
    started = time.perf_counter()
    try:
        return [_open(AESGCM(key), blob, aad) for key, blob, aad in sealed]
    finally:
        STATS.add(time.perf_counter() - started)


def _open(cipher: AESGCM, blob: bytes, aad: bytes) -> bytes:
    version = blob[:1]
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES or version not in (FORMAT_V1, FORMAT_V2):
        raise SealError("sealed blob is malformed")
    nonce = blob[1 : 1 + NONCE_BYTES]
    bound = aad if version == FORMAT_V1 else FORMAT_V2 + aad
    try:
        plaintext = cipher.decrypt(nonce, blob[1 + NONCE_BYTES :], bound)
    except InvalidTag:
        raise SealError("ciphertext failed authentication") from None
    return plaintext if version == FORMAT_V1 else unpad(plaintext)
