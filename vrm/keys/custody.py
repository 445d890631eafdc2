"""Customer-held root keys: what opens them, and nothing else does
(docs/keys.md, "Customer-held keys").

A customer-held root key is never stored usable. Three things open it:

- the password: one Argon2id run, its output split with HKDF into the
  login verifier (what the database keeps in ``password_hash``) and the
  key-encryption key that wraps the root key (``root_by_password``), so a
  log-in costs one Argon2id run, as before, and the verifier tells nothing
  about the key-encryption key;
- the recovery key, shown once at sign-up: 160 random bits, written in
  base32 groups; high in entropy, so HKDF alone stretches it
  (``root_by_recovery``);
- a live credential: at log-in the root key is sealed under a key
  derived from the session token, which only the cookie holds (the
  database keeps the token's keyed hash), and for the command line under
  keys derived from its OAuth tokens (:func:`seal_for_credential`), so a
  copy of the database opens no session's or token's root key;
- a device code, for the minutes between the customer's approval on the
  device page and the device's exchange of the code (RFC 8628): the page
  has no device code, so the root key is sealed to a public key whose
  private key is derived from it (:func:`seal_for_device`).

Everything here is a pure function of its inputs: the accounts use cases
decide when to call which.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import secrets
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vrm.crypto import aead

# The root key version of a customer-held root key in ``data_key`` rows:
# the key store's versions start at 1, and it never holds this one.
CUSTOMER_ROOT = 0

# How a customer-held password verifier is written in ``password_hash``.
_PREFIX = "$vrm-kek$v=1$"
_STORED = re.compile(
    r"^\$vrm-kek\$v=1\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$(?P<salt>[A-Za-z0-9_-]+)\$(?P<verifier>[A-Za-z0-9_-]+)$"
)
_SALT_BYTES = 16
RECOVERY_BYTES = 20
_GROUP = 4
_X25519_BYTES = 32


class RecoveryKeyError(ValueError):
    """Not a recovery key as this server writes them (a typo, most likely)."""


@dataclass(frozen=True)
class Argon2Cost:
    time_cost: int
    memory_kib: int
    parallelism: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(secret: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=aead.KEY_BYTES, salt=salt, info=info).derive(
        secret
    )


def _argon2(password: str, salt: bytes, cost: Argon2Cost) -> bytes:
    return hash_secret_raw(
        password.encode(),
        salt,
        time_cost=cost.time_cost,
        memory_cost=cost.memory_kib,
        parallelism=cost.parallelism,
        hash_len=32,
        type=Type.ID,
    )


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """(login verifier, key-encryption key) from one Argon2id output."""
    return _hkdf(raw, b"vrm/login-verifier/1"), _hkdf(raw, b"vrm/root-wrap/1")


def is_customer_held(stored: str | None) -> bool:
    return stored is not None and stored.startswith(_PREFIX)


def new_verifier(password: str, cost: Argon2Cost) -> tuple[str, bytes]:
    """(what ``password_hash`` keeps, the key-encryption key) for a new
    password."""
    salt = secrets.token_bytes(_SALT_BYTES)
    verifier, kek = _split(_argon2(password, salt, cost))
    stored = (
        f"{_PREFIX}m={cost.memory_kib},t={cost.time_cost},p={cost.parallelism}"
        f"${_b64(salt)}${_b64(verifier)}"
    )
    return stored, kek


def check(stored: str, password: str) -> bytes | None:
    """The key-encryption key if ``password`` is the one ``stored`` was made
    from, else None. Compares in constant time."""
    match = _STORED.match(stored)
    if match is None:
        return None
    verifier, kek = _split(_argon2(password, _unb64(match["salt"]), _cost(match)))
    if not hmac.compare_digest(verifier, _unb64(match["verifier"])):
        return None
    return kek


def _cost(match: re.Match[str]) -> Argon2Cost:
    return Argon2Cost(int(match["t"]), int(match["m"]), int(match["p"]))


def cost_of(stored: str) -> Argon2Cost | None:
    match = _STORED.match(stored)
    return None if match is None else _cost(match)


def _root_aad(customer_id: str, by: str) -> bytes:
    return aead.associated_data("vrm-root/1", customer_id, by)


def wrap_root(kek: bytes, customer_id: str, root: bytes, *, by: str) -> bytes:
    """The root key sealed under ``kek``; ``by`` is "password" or
    "recovery", bound in so one wrapping cannot stand for the other."""
    return aead.seal(kek, root, _root_aad(customer_id, by))


def unwrap_root(kek: bytes, customer_id: str, wrapped: bytes, *, by: str) -> bytes:
    """Raises :class:`vrm.crypto.aead.SealError` if ``kek`` is not the key."""
    return aead.open_sealed(kek, wrapped, _root_aad(customer_id, by))


# -- the recovery key ----------------------------------------------------


def new_recovery_key() -> str:
    """A fresh recovery key as the customer writes it down:
    ``ABCD-EFGH-...``, eight groups of four base32 characters."""
    text = base64.b32encode(secrets.token_bytes(RECOVERY_BYTES)).decode()
    return "-".join(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))


def recovery_kek(recovery_key: str, customer_id: str) -> bytes:
    """The key-encryption key of a recovery key as typed: case, spaces and
    dashes do not matter. Raises :class:`RecoveryKeyError` for anything
    that is not one."""
    text = re.sub(r"[\s-]", "", recovery_key).upper()
    try:
        raw = base64.b32decode(text)
    except (binascii.Error, ValueError):
        raise RecoveryKeyError("that is not a recovery key") from None
    if len(raw) != RECOVERY_BYTES:
        raise RecoveryKeyError("that is not a recovery key")
    return _hkdf(raw, b"vrm/recovery-wrap/1", salt=customer_id.encode())


# -- credentials: a session, an access token, a refresh token ---------------


def _credential_key(secret: str, kind: str) -> bytes:
    return _hkdf(secret.encode(), f"vrm/{kind}-root/1".encode())


def _credential_aad(kind: str, customer_id: str, holder: str) -> bytes:
    return aead.associated_data(f"vrm-{kind}-root/1", customer_id, holder)


def seal_for_credential(
    secret: str, customer_id: str, holder: str, root: bytes, *, kind: str
) -> bytes:
    """The root key sealed under a key only ``secret`` gives: a session
    token (``kind`` "session", ``holder`` the session's id) or an OAuth
    token ("access-token", "refresh-token", ``holder`` the token row's
    id). The kind, the customer and the row are bound in, so a seal moved
    to another row, customer or kind of credential does not open."""
    return aead.seal(
        _credential_key(secret, kind), root, _credential_aad(kind, customer_id, holder)
    )


def open_for_credential(
    secret: str, customer_id: str, holder: str, sealed: bytes, *, kind: str
) -> bytes:
    """Raises :class:`vrm.crypto.aead.SealError` unless ``sealed`` was
    made by :func:`seal_for_credential` with the same arguments."""
    return aead.open_sealed(
        _credential_key(secret, kind), sealed, _credential_aad(kind, customer_id, holder)
    )


# -- a device code (RFC 8628) ----------------------------------------------------


def _device_private(device_code: str) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(_hkdf(device_code.encode(), b"vrm/device-root/1"))


def device_public_key(device_code: str) -> bytes:
    """What the device authorization row keeps, so that the device page
    can seal for a device code it never sees (:func:`seal_for_device`)."""
    return _device_private(device_code).public_key().public_bytes_raw()


def _device_seal_key(shared: bytes, ephemeral: bytes, public: bytes) -> bytes:
    return _hkdf(shared, b"vrm/device-root-seal/1", salt=ephemeral + public)


def seal_for_device(public: bytes, customer_id: str, holder: str, root: bytes) -> bytes:
    """The root key sealed to ``public`` (:func:`device_public_key`):
    an ephemeral X25519 key, then AES-GCM under the shared secret; only
    the device code opens it. ``holder`` names the row."""
    ephemeral = X25519PrivateKey.generate()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
    sent = ephemeral.public_key().public_bytes_raw()
    key = _device_seal_key(shared, sent, public)
    return sent + aead.seal(key, root, _credential_aad("device", customer_id, holder))


def open_for_device(device_code: str, customer_id: str, holder: str, sealed: bytes) -> bytes:
    """Raises :class:`vrm.crypto.aead.SealError` unless ``sealed`` was made
    by :func:`seal_for_device` for this device code, customer and row."""
    private = _device_private(device_code)
    public = private.public_key().public_bytes_raw()
    sent, blob = sealed[:_X25519_BYTES], sealed[_X25519_BYTES:]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(sent))
    except ValueError:  # not a point, or one of small order
        raise aead.SealError("not a device seal") from None
    key = _device_seal_key(shared, sent, public)
    return aead.open_sealed(key, blob, _credential_aad("device", customer_id, holder))
