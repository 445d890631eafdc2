"""C2SP cosignatures (c2sp.org/tlog-cosignature), the Ed25519 kind: a witness's
timestamped statement that it saw a checkpoint consistent with the log's past.

A cosignature is a note signature (signature type 0x04) on a checkpoint. Its
bytes after the key ID are a big-endian 64-bit POSIX timestamp and an Ed25519
signature of::

    cosignature/v1
    time <timestamp>
    <the checkpoint's note text>

:class:`CosignatureVerifier` is a :class:`consent.audit.note.NoteVerifier`, so
:func:`consent.audit.note.open_note` checks cosignatures beside the log's own
signature. The ML-DSA-44 kind of the same spec is not implemented.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from consent.audit.checkpoint import Checkpoint
from consent.audit.note import (
    NoteError,
    OpenedNote,
    Signature,
    check_key_name,
    decode_verifier_key,
    encode_verifier_key,
    key_id,
)

SIG_TYPE_COSIGNATURE_V1 = 0x04
"""The signature type byte of timestamped Ed25519 cosignatures (signed-note,
"Signature types"; tlog-cosignature, "Format")."""

MAX_TIMESTAMP = 2**63 - 1
"""The latest timestamp a cosignature may carry (tlog-cosignature, "Format")."""

_TIMESTAMP_SIZE = 8
_ED25519_SIGNATURE_SIZE = 64
SIGNATURE_SIZE = _TIMESTAMP_SIZE + _ED25519_SIGNATURE_SIZE
"""A cosignature's bytes after the key ID: timestamp and Ed25519 signature."""

_ED25519_KEY_SIZE = 32


def cosigned_message(checkpoint_text: str, timestamp: int) -> bytes:
    """The message a cosignature signs: the header line ``cosignature/v1``,
    ``time <timestamp>`` and the checkpoint's note text (tlog-cosignature,
    "Ed25519 signed message")."""
    _check_timestamp(timestamp)
    return f"cosignature/v1\ntime {timestamp}\n{checkpoint_text}".encode()


def cosignature_timestamp(signature: bytes) -> int:
    """The timestamp of a cosignature's bytes (after the key ID), unverified:
    the first 8 bytes, big-endian (tlog-cosignature, "Format")."""
    if len(signature) != SIGNATURE_SIZE:
        raise NoteError(f"a cosignature is {SIGNATURE_SIZE} bytes after its key ID")
    timestamp = int.from_bytes(signature[:_TIMESTAMP_SIZE], "big")
    _check_timestamp(timestamp)
    return timestamp


class CosignatureVerifier:
    """A cosigner's Ed25519 key, checking cosignature/v1 signatures."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != _ED25519_KEY_SIZE:
            raise NoteError("an Ed25519 public key is 32 bytes")
        self._name = name
        self._key_id = key_id(name, SIG_TYPE_COSIGNATURE_V1, public_key)
        self._raw = public_key
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def parse(cls, vkey: str) -> CosignatureVerifier:
        """The verifier of a verifier key of type 0x04 (tlog-cosignature,
        "Format"); any other type, a mistyped name, bad base64, a key of the
        wrong length or a key ID that does not match is a :class:`NoteError`."""
        name, signature_type, public_key = decode_verifier_key(vkey)
        if signature_type != SIG_TYPE_COSIGNATURE_V1:
            raise NoteError(f"verifier key {name!r} is not a cosignature (type 0x04) key")
        return cls(name, public_key)

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    @property
    def public_key(self) -> bytes:
        return self._raw

    def verifier_key(self) -> str:
        """``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        return encode_verifier_key(self._name, SIG_TYPE_COSIGNATURE_V1, self._raw)

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` (after the key ID) is this cosigner's
        cosignature of the checkpoint text at the timestamp it carries."""
        try:
            timestamp = cosignature_timestamp(signature)
            message = cosigned_message(text, timestamp)
            self._public_key.verify(signature[_TIMESTAMP_SIZE:], message)
        except (NoteError, InvalidSignature, UnicodeEncodeError):
            return False
        return True

    def verified_timestamp(self, opened: OpenedNote) -> int | None:
        """The timestamp of this cosigner's signature among those
        :func:`~consent.audit.note.open_note` verified, or None if it was not
        one of them."""
        for sig in opened.verified:
            if sig.name == self._name and sig.key_id == self._key_id:
                return cosignature_timestamp(sig.signature)
        return None

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.verifier_key()!r})"


class CosignatureSigner:
    """A cosigner's Ed25519 key, from a 32-byte seed and the cosigner's name."""

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != _ED25519_KEY_SIZE:
            raise NoteError("an Ed25519 seed is 32 bytes")
        check_key_name(name)
        self._private_key = Ed25519PrivateKey.from_private_bytes(seed)
        public_key = self._private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._verifier = CosignatureVerifier(name, public_key)

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    def verifier(self) -> CosignatureVerifier:
        """The verifier of this cosigner's cosignatures."""
        return self._verifier

    def verifier_key(self) -> str:
        """``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        return self._verifier.verifier_key()

    def cosign(self, checkpoint_text: str, timestamp: int) -> str:
        """The signature line of this cosigner's cosignature of a checkpoint at
        ``timestamp`` (POSIX seconds), to append to the checkpoint's note. The
        text must be a valid checkpoint (:meth:`Checkpoint.parse`)."""
        Checkpoint.parse(checkpoint_text)
        message = cosigned_message(checkpoint_text, timestamp)
        signature = self._private_key.sign(message)
        stamped = timestamp.to_bytes(_TIMESTAMP_SIZE, "big") + signature
        return Signature(self.name, self.key_id, stamped).line

    def __repr__(self) -> str:
        return f"CosignatureSigner({self.name!r}, key ID {self.key_id.hex()})"


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise NoteError("a timestamp is an integer")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"a timestamp is between 0 and {MAX_TIMESTAMP}")
