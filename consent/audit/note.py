"""C2SP signed notes (c2sp.org/signed-note): text signed by one or more keys.

A note is its text (ending in a newline), a blank line, then one signature
line per key: an em dash (U+2014), a space, the key name, a space and
``base64(4-byte key ID || signature)``. Keys are named by verifier keys,
``<name>+<hex key ID>+<base64(signature type || public key)>`` (the form of
golang.org/x/mod/sumdb/note, which later revisions of the spec adopted).

This module signs and opens notes with Ed25519 keys (signature type 0x01).
Other signature types plug into :func:`open_note` through the
:class:`NoteVerifier` protocol: the witnesses' timestamped cosignatures
(type 0x04) are in :mod:`consent.audit.cosignature`.

Parsing is strict: a note that does not follow the format exactly is a
:class:`NoteError`, never a best guess.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

EM_DASH = "\u2014"
"""The first character of a signature line (signed-note, "Format")."""

SIG_TYPE_ED25519 = 0x01
"""The signature type byte of plain Ed25519 note signatures (signed-note,
"Signature types")."""

MAX_SIGNATURES = 100
"""The most signature lines :func:`open_note` reads. The spec asks verifiers
for a limit of at least 16 (signed-note, "Format"); 100 is Go's sumdb/note's."""

KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_HEX_KEY_ID = re.compile(r"[0-9a-fA-F]{8}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class NoteError(ValueError):
    """A note, a key or a signature that is malformed, or that does not verify."""


def b64decode_strict(value: str, what: str) -> bytes:
    """Standard base64 (RFC 4648, section 4) in its one canonical spelling:
    padded, no whitespace, no stray bits."""
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise NoteError(f"{what} is not base64") from exc
    if base64.b64encode(decoded).decode("ascii") != value:
        raise NoteError(f"{what} is not canonical base64")
    return decoded


def check_key_name(name: str) -> None:
    """Raise :class:`NoteError` unless ``name`` is a key name: non-empty, no
    Unicode spaces, no plus (signed-note, "Format"), and no control characters
    (a note may hold none)."""
    if not name:
        raise NoteError("a key name is empty")
    for char in name:
        if char == "+" or char.isspace() or ord(char) < 0x20:
            raise NoteError(f"key name {name!r} holds a space, a plus or a control character")
    _check_utf8(name, "a key name")


def key_id(name: str, signature_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID: ``SHA-256(name || 0x0A || type || public key)[:4]``
    (signed-note, "Signatures")."""
    check_key_name(name)
    if not 0 <= signature_type <= 0xFF:
        raise NoteError("a signature type is one byte")
    material = name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def encode_verifier_key(name: str, signature_type: int, public_key: bytes) -> str:
    """The verifier key ``<name>+<hex key ID>+<base64(type || public key)>``."""
    kid = key_id(name, signature_type, public_key)
    material = base64.b64encode(bytes([signature_type]) + public_key).decode("ascii")
    return f"{name}+{kid.hex()}+{material}"


def decode_verifier_key(vkey: str) -> tuple[str, int, bytes]:
    """Split a verifier key into its name, signature type and public key,
    checking the name's rules, the base64 and that the key ID is the one the
    name, type and key hash to. The key's length is the caller's to check."""
    name, plus, rest = vkey.partition("+")
    hex_id, plus2, material = rest.partition("+")
    if not plus or not plus2:
        raise NoteError("a verifier key is <name>+<hex key ID>+<base64 key>")
    check_key_name(name)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError("a verifier key's key ID is 8 hexadecimal digits")
    raw = b64decode_strict(material, "a verifier key's key material")
    if len(raw) < 2:
        raise NoteError("a verifier key holds no public key")
    signature_type, public_key = raw[0], raw[1:]
    if key_id(name, signature_type, public_key) != bytes.fromhex(hex_id):
        raise NoteError(f"verifier key {name!r}: the key ID does not match the key")
    return name, signature_type, public_key


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: the key's name and ID, and the signature
    bytes that follow the key ID."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_id) != KEY_ID_SIZE:
            raise NoteError(f"a key ID is {KEY_ID_SIZE} bytes")
        if not self.signature:
            raise NoteError(f"the signature of {self.name!r} is empty")

    @property
    def line(self) -> str:
        """The signature line, newline included (signed-note, "Signatures")."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{EM_DASH} {self.name} {blob}\n"

    @classmethod
    def from_line(cls, line: str) -> Signature:
        """Parse one signature line, with or without its final newline."""
        body = line.removesuffix("\n")
        if "\n" in body:
            raise NoteError("a signature line is one line")
        prefix = EM_DASH + " "
        if not body.startswith(prefix):
            raise NoteError("a signature line starts with an em dash and a space")
        name, space, blob = body[len(prefix) :].partition(" ")
        if not space:
            raise NoteError("a signature line is '— <name> <base64 signature>'")
        check_key_name(name)
        raw = b64decode_strict(blob, f"the signature of {name!r}")
        if len(raw) <= KEY_ID_SIZE:
            raise NoteError(f"the signature of {name!r} is too short")
        return cls(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


class NoteVerifier(Protocol):
    """What :func:`open_note` needs of a key: its name and key ID, and a check
    of a signature over the note text (the bytes after the key ID)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def verify(self, text: str, signature: bytes) -> bool: ...


class NoteSigner(Protocol):
    """What :func:`sign_note` needs of a key: its name and key ID, and a
    signature line over a note text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> bytes: ...

    def sign(self, text: str) -> str: ...


class Verifier:
    """An Ed25519 note verifier (signed-note, "Ed25519 signatures")."""

    def __init__(self, name: str, public_key: bytes) -> None:
        if len(public_key) != _ED25519_KEY_SIZE:
            raise NoteError("an Ed25519 public key is 32 bytes")
        self._name = name
        self._key_id = key_id(name, SIG_TYPE_ED25519, public_key)
        self._raw = public_key
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """The verifier of a verifier key of type 0x01; any other type, a
        mistyped name, bad base64, a key of the wrong length or a key ID that
        does not match is a :class:`NoteError`."""
        name, signature_type, public_key = decode_verifier_key(vkey)
        if signature_type != SIG_TYPE_ED25519:
            raise NoteError(f"verifier key {name!r} is not an Ed25519 (type 0x01) key")
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
        """This key as a verifier key string."""
        return encode_verifier_key(self._name, SIG_TYPE_ED25519, self._raw)

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether ``signature`` (without the key ID) is this key's Ed25519
        signature of the note text (RFC 8032)."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            self._public_key.verify(signature, text.encode("utf-8"))
        except (InvalidSignature, UnicodeEncodeError):
            return False
        return True

    def __repr__(self) -> str:
        return f"Verifier({self.verifier_key()!r})"


class Signer:
    """An Ed25519 note signer, from a 32-byte seed and a key name."""

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != _ED25519_KEY_SIZE:
            raise NoteError("an Ed25519 seed is 32 bytes")
        check_key_name(name)
        self._private_key = Ed25519PrivateKey.from_private_bytes(seed)
        public_key = self._private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._verifier = Verifier(name, public_key)

    @property
    def name(self) -> str:
        return self._verifier.name

    @property
    def key_id(self) -> bytes:
        return self._verifier.key_id

    def verifier(self) -> Verifier:
        """The verifier of this key's signatures."""
        return self._verifier

    def verifier_key(self) -> str:
        """``<name>+<hex key ID>+<base64(0x01 || public key)>``."""
        return self._verifier.verifier_key()

    def sign(self, text: str) -> str:
        """The signature line of this key over a note text (signed-note,
        "Ed25519 signatures")."""
        check_text(text)
        signature = self._private_key.sign(text.encode("utf-8"))
        return Signature(self.name, self.key_id, signature).line

    def __repr__(self) -> str:
        return f"Signer({self.name!r}, key ID {self.key_id.hex()})"


@dataclass(frozen=True)
class OpenedNote:
    """A note whose signatures were checked: its text, every signature line in
    the note's order, and those a known key verified. The others, from keys not
    given to :func:`open_note`, are kept so that the note can be written out
    again with them (:meth:`to_note`)."""

    text: str
    signatures: tuple[Signature, ...]
    verified: tuple[Signature, ...]

    @property
    def unverified(self) -> tuple[Signature, ...]:
        """The signatures of keys :func:`open_note` was not given."""
        return tuple(sig for sig in self.signatures if sig not in self.verified)

    def to_note(self, extra: Iterable[Signature] = ()) -> str:
        """The note again, with ``extra`` signatures (a witness's cosignatures,
        say) after its own; a key already present, or more than
        :data:`MAX_SIGNATURES` signatures, is a :class:`NoteError`."""
        signatures = self.signatures + tuple(extra)
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"a note has at most {MAX_SIGNATURES} signatures")
        _check_distinct_keys((sig.name, sig.key_id) for sig in signatures)
        return self.text + "\n" + "".join(sig.line for sig in signatures)


def check_text(text: str) -> None:
    """Raise :class:`NoteError` unless ``text`` can be a note's text: ending in
    a newline, valid UTF-8, and no control characters but newline
    (signed-note, "Format")."""
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    _check_characters(text)


def sign_note(text: str, signers: Iterable[NoteSigner]) -> str:
    """The note of ``text`` signed by every signer: the text, a blank line and
    one signature line per signer (signed-note, "Format")."""
    check_text(text)
    signers = tuple(signers)
    if not signers:
        raise NoteError("a note has at least one signature")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"a note has at most {MAX_SIGNATURES} signatures")
    _check_distinct_keys((signer.name, signer.key_id) for signer in signers)
    return text + "\n" + "".join(signer.sign(text) for signer in signers)


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> OpenedNote:
    """Parse a note and check its signatures (signed-note, "Signatures").

    Every signature whose key name and key ID are a known verifier's must
    verify; the others are kept but not trusted. A malformed note, a known
    key's signature that fails, or a note no known key signed is a
    :class:`NoteError`. The text is to be trusted only when this returns.
    """
    text, signatures = _parse_note(note)
    known = _index_verifiers(verifiers)
    verified = []
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text, sig.signature):
            raise NoteError(f"the signature of key {sig.name}+{sig.key_id.hex()} does not verify")
        verified.append(sig)
    if not verified:
        raise NoteError("no known key signed the note")
    return OpenedNote(text, signatures, tuple(verified))


def _parse_note(note: str | bytes) -> tuple[str, tuple[Signature, ...]]:
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("a note is not valid UTF-8") from exc
    _check_characters(note)
    if not note.endswith("\n"):
        raise NoteError("a note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note has a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise NoteError("a note has at least one signature")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note has at most {MAX_SIGNATURES} signatures")
    signatures = tuple(Signature.from_line(line) for line in lines)
    _check_distinct_keys((sig.name, sig.key_id) for sig in signatures)
    return text, signatures


def _index_verifiers(
    verifiers: Iterable[NoteVerifier],
) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        handle = (verifier.name, verifier.key_id)
        if handle in known:
            raise NoteError(f"two verifiers share key {verifier.name}+{verifier.key_id.hex()}")
        known[handle] = verifier
    return known


def _check_distinct_keys(handles: Iterable[tuple[str, bytes]]) -> None:
    seen: set[tuple[str, bytes]] = set()
    for name, kid in handles:
        if (name, kid) in seen:
            raise NoteError(f"key {name}+{kid.hex()} signs the note twice")
        seen.add((name, kid))


def _check_characters(value: str) -> None:
    if _CONTROL.search(value):
        raise NoteError("a note holds no control characters but newline")
    _check_utf8(value, "a note")


def _check_utf8(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError(f"{what} is not valid UTF-8") from exc
