"""How a backup's files are sealed: AES-256-GCM under the operator's key.

A backup folder holds ``manifest.json`` (in clear: no personal value, only
counts, times and a key check) and sealed files. Each file is a sequence of
chunks, each ``flag(1) || length(4) || sealed`` where ``sealed`` is the
vrm.crypto.aead format and its associated data is
``["vrm-backup/1", SHA-256 of the manifest, file name, chunk index, flag]``.
So a chunk opens only in its own place: an edited manifest, a file renamed
or taken from another backup, chunks reordered, dropped or cut off after
the last one all fail authentication. The flag says whether the chunk is
the last, so a file cut at a chunk boundary is refused too (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár, 2015). Chunks keep
memory flat however large the database is.

The key check in the manifest (HMAC-SHA256 of the backup's random id)
tells a wrong key from a damaged file: AES-GCM alone cannot. The sealing
key and the check key are derived apart from the operator's key with HKDF
(RFC 5869), so no key serves two algorithms.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import zlib
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vrm.crypto import aead

FORMAT = "vrm-backup/1"
CHUNK_BYTES = 4 * 1024 * 1024
_MORE, _LAST = b"m", b"l"
# Compressed, a chunk may grow a little; anything far larger is not ours.
_MAX_SEALED = CHUNK_BYTES + CHUNK_BYTES // 8 + 1024


class BackupError(Exception):
    """A backup cannot be made or restored; the message is one line for the
    operator and never holds a key or a personal value."""


def new_key() -> str:
    return base64.urlsafe_b64encode(aead.new_key()).decode()


def parse_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != aead.KEY_BYTES:
        raise BackupError(
            "the backup key must be 32 bytes in base64url, as `vrm backup new-key` prints"
        )
    return key


def _subkey(key: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=aead.KEY_BYTES,
        salt=None,
        info=f"{FORMAT} {purpose}".encode(),
    ).derive(key)


def key_check(key: bytes, backup_id: str) -> str:
    check_key = _subkey(key, "key check")
    return hmac.new(check_key, backup_id.encode(), hashlib.sha256).hexdigest()


def verify_key(key: bytes, backup_id: str, expected: str) -> None:
    if not hmac.compare_digest(key_check(key, backup_id), expected):
        raise BackupError("wrong backup key: this backup was sealed with another one")


def _aad(manifest_digest: str, name: str, index: int, flag: bytes) -> bytes:
    return aead.associated_data(FORMAT, manifest_digest, name, index, flag.decode())


def seal_stream(
    key: bytes, source: BinaryIO, target: BinaryIO, *, manifest_digest: str, name: str
) -> None:
    key, index = _subkey(key, "seal"), 0
    chunk = source.read(CHUNK_BYTES)
    while True:
        following = source.read(CHUNK_BYTES)
        flag = _MORE if following else _LAST
        sealed = aead.seal(key, zlib.compress(chunk, 6), _aad(manifest_digest, name, index, flag))
        target.write(flag + len(sealed).to_bytes(4, "big") + sealed)
        if flag == _LAST:
            return
        chunk, index = following, index + 1


def open_stream(
    key: bytes, source: BinaryIO, target: BinaryIO, *, manifest_digest: str, name: str
) -> None:
    """Write the plaintext to target; raises BackupError at the first chunk
    that fails, so the caller must discard what was written."""
    damaged = f"the backup is damaged or was altered: {name} failed its integrity check"
    key, index = _subkey(key, "seal"), 0
    while True:
        head = source.read(5)
        flag, size = head[:1], int.from_bytes(head[1:5], "big")
        if len(head) != 5 or flag not in (_MORE, _LAST) or size > _MAX_SEALED:
            raise BackupError(damaged)
        sealed = source.read(size)
        try:
            plain = aead.open_sealed(key, sealed, _aad(manifest_digest, name, index, flag))
        except aead.SealError:
            raise BackupError(damaged) from None
        target.write(zlib.decompress(plain))
        if flag == _LAST:
            if source.read(1):
                raise BackupError(damaged)
            return
        index += 1
