"""AES-256-GCM sealing with associated data.

A sealed blob is ``b"\\x01" + nonce(12) + ciphertext_and_tag``. The associated
data is the JSON encoding of a list of strings (unambiguous, unlike joining
with a separator), so a ciphertext opens only at the exact place it was sealed
for: the same customer, category, record and key version.
"""

from __future__ import annotations

import json
import os
import threading
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_V1 = b"\x01"
NONCE_BYTES = 12  # NIST SP 800-38D: 96-bit random nonces
KEY_BYTES = 32


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


def associated_data(*parts: str | int) -> bytes:
    return json.dumps([str(p) for p in parts], separators=(",", ":")).encode()


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    started = time.perf_counter()
    nonce = os.urandom(NONCE_BYTES)
    blob = FORMAT_V1 + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)
    STATS.add(time.perf_counter() - started)
    return blob


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    started = time.perf_counter()
    try:
        if len(blob) < 1 + NONCE_BYTES + 16 or blob[:1] != FORMAT_V1:
            raise SealError("sealed blob is malformed")
        nonce = blob[1 : 1 + NONCE_BYTES]
        try:
            return AESGCM(key).decrypt(nonce, blob[1 + NONCE_BYTES :], aad)
        except InvalidTag:
            raise SealError("ciphertext failed authentication") from None
    finally:
        STATS.add(time.perf_counter() - started)
