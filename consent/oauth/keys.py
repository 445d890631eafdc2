"""The server's signing key (ID tokens, consent receipts) and its JWKS.

The ES256 key is derived from a 32-byte server secret in the key store, so
it lives where every other key lives, is created on first use, and every
server process derives the same key without sharing a file of its own.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey

from vrm.keys.service import Vault

ALG = "ES256"
# Order of the P-256 group (SEC 2, 2.4.2).
_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

_lock = threading.Lock()
# Per key store object (weakly held, so a new store never sees an old key).
_cache: weakref.WeakKeyDictionary[object, ECKey] = weakref.WeakKeyDictionary()


def signing_key(vault: Vault) -> ECKey:
    """The private signing key, with its RFC 7638 thumbprint as ``kid``."""
    cached = _cache.get(vault.keystore)
    if cached is not None:
        return cached
    seed = vault.keystore.server_key("signing-es256")
    scalar = int.from_bytes(seed, "big") % (_P256_N - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = ECKey.import_key(pem, {"use": "sig", "alg": ALG})
    key.ensure_kid()
    with _lock:
        _cache[vault.keystore] = key
    return key


def jwks(vault: Vault) -> dict[str, Any]:
    """The public half, as a JWK Set (never the private members)."""
    public = signing_key(vault).as_dict(private=False)
    return {"keys": [public]}
