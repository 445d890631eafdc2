"""Sealing to a customer-held customer's public key: what a vendor deposits
while they are away (docs/keys.md, "Deposits while you are away").

Their history data key opens only in their session or for a live grant
that reads history (vrm/keys/service.py), so a deposit made without either
cannot be sealed with it. It is sealed instead to the customer's X25519
public key with HPKE (RFC 9180, base mode, single shot):
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, as the
``cryptography`` package implements it. The private key is sealed under
the customer's root key, so it opens exactly where the root key does: in
their session, never from a copy of the database and the key store.

The HPKE ``info`` binds the customer id and the purpose (RFC 9180
section 5.1: it is bound into the key schedule), so a sealed deposit
moved to another customer, or a ciphertext made for another purpose,
does not open. The plaintext is padded to the same buckets as every other
sealed value (vrm/crypto/aead.py), so its size tells what a record's does.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vrm.crypto import aead

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
_PURPOSE = "vrm-deposit/1"


def _private_aad(customer_id: str) -> bytes:
    return aead.associated_data("vrm-deposit-key/1", customer_id)


def _info(customer_id: str) -> bytes:
    return aead.associated_data(_PURPOSE, customer_id)


def new_key_pair(customer_id: str, root: bytes) -> tuple[bytes, bytes]:
    """(public key, private key sealed under ``root``) for a new customer,
    or one from before deposits were sealed. Both raw, 32 bytes before
    sealing (RFC 7748)."""
    private = X25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    raw = private.private_bytes_raw()
    return public, aead.seal(root, raw, _private_aad(customer_id))


def seal(public_key: bytes, customer_id: str, plaintext: bytes) -> bytes:
    """``plaintext`` sealed to the customer's public key: only their
    private key opens it."""
    return SUITE.encrypt(
        aead.pad(plaintext), X25519PublicKey.from_public_bytes(public_key), info=_info(customer_id)
    )


def open_sealed(root: bytes, sealed_private: bytes, customer_id: str, sealed: bytes) -> bytes:
    """What :func:`seal` sealed, opened with the private key ``root``
    opens. Raises :class:`vrm.crypto.aead.SealError` if either does not
    open (another customer's, altered, or not a sealed box)."""
    raw = aead.open_sealed(root, sealed_private, _private_aad(customer_id))
    try:
        padded = SUITE.decrypt(
            sealed, X25519PrivateKey.from_private_bytes(raw), info=_info(customer_id)
        )
    except (InvalidTag, ValueError):
        raise aead.SealError("sealed box does not open") from None
    return aead.unpad(padded)
