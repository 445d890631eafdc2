"""The at-rest attack's tools (tests/vrm/test_at_rest_attack.py,
tests/vrm/test_move_to_customer_keys.py): a copy of the database and the
key store, every sealed value in it with the associated data the code gives
it, and the attack itself, every key against every ciphertext until
nothing more opens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import Engine, MetaData, select

import vrm.models  # noqa: F401 - every table on the metadata
from vrm.catalogue import ACCOUNT, CATEGORIES, field_key
from vrm.crypto import aead
from vrm.keys import sealed_box
from vrm.keys.custody import _credential_aad, _root_aad
from vrm.keys.sealed_box import _info, _private_aad
from vrm.keys.service import escrow_aad, field_key_of, record_aad, wrap_aad
from vrm.records import sealing

# Every field's key name (vrm/catalogue, field_key).
FIELD_KEYS = [field_key(c, f) for c in CATEGORIES if c != "history" for f in CATEGORIES[c].fields]

# What opens what: a ciphertext, the associated data it was sealed with,
# and what its plaintext is (a key, for whom; or a record).
Gives = tuple[str, ...]
# How a ciphertext is opened with a key: (key, ciphertext, associated data).
Opener = Callable[[bytes, bytes, bytes], bytes]


def _open_box(private_key: bytes, ciphertext: bytes, info: bytes) -> bytes:
    """A sealed box (vrm/keys/sealed_box.py) tried with a candidate X25519
    private key: any 32 bytes are one."""
    try:
        return sealed_box.SUITE.decrypt(
            ciphertext, X25519PrivateKey.from_private_bytes(private_key), info=info
        )
    except (InvalidTag, ValueError):
        raise aead.SealError("does not open") from None


@dataclass
class Sealed:
    what: Gives
    ciphertext: bytes
    aad: bytes
    # The key this ciphertext yields when it opens, named (None: a record).
    yields: Gives | None = None
    opener: Opener = aead.open_sealed


@dataclass
class Copy:
    """What the attacker took: every row of every table, every key file."""

    rows: dict[str, list[dict[str, Any]]]
    key_files: dict[str, bytes]
    opened: dict[Gives, bytes] = field(default_factory=dict)


def take_copy(engine: Engine, key_dir: Path) -> Copy:
    metadata = MetaData()
    metadata.reflect(engine)
    with engine.connect() as conn:
        rows = {
            name: [dict(r._mapping) for r in conn.execute(select(table))]
            for name, table in metadata.tables.items()
        }
    key_files = {
        p.relative_to(key_dir).as_posix(): p.read_bytes()
        for p in sorted(key_dir.rglob("*"))
        if p.is_file()
    }
    return Copy(rows, key_files)


def ciphertexts(copy: Copy) -> list[Sealed]:
    """Every sealed value the copy holds, with the associated data the code
    (which the attacker reads) would give it."""
    found: list[Sealed] = []
    for r in copy.rows["data_key"]:
        aad = wrap_aad(r["customer_id"], r["category"], r["version"], r["root_version"])
        name = ("data key", r["customer_id"], r["category"], str(r["version"]))
        found.append(Sealed(name, r["wrapped"], aad, yields=name))
    for r in copy.rows["key_escrow"]:
        aad = escrow_aad(r["holder_id"], r["customer_id"], r["category"], r["version"])
        name = ("data key", r["customer_id"], r["category"], str(r["version"]))
        found.append(Sealed(("escrow", r["holder_id"], *name), r["wrapped"], aad, yields=name))
    for r in copy.rows["customer"]:
        for by in ("password", "recovery"):
            if r[f"root_by_{by}"] is not None:
                found.append(
                    Sealed(
                        (f"root by {by}", r["id"]),
                        r[f"root_by_{by}"],
                        _root_aad(r["id"], by),
                        yields=("root", r["id"]),
                    )
                )
        found.append(
            Sealed(
                ("record", r["id"], ACCOUNT),
                r["email_ct"],
                record_aad(r["id"], ACCOUNT, r["id"], r["key_version"]),
            )
        )
        if r["deposit_private_key"] is not None:
            found.append(
                Sealed(
                    ("deposit key", r["id"]),
                    r["deposit_private_key"],
                    _private_aad(r["id"]),
                    yields=("deposit key", r["id"]),
                )
            )
    for r in copy.rows["login_session"]:
        if r["root_sealed"] is not None:
            aad = _credential_aad("session", r["customer_id"], r["id"])
            found.append(
                Sealed(
                    ("session", r["id"]), r["root_sealed"], aad, yields=("root", r["customer_id"])
                )
            )
    for r in copy.rows["oauth_token"]:
        for kind, column in (
            ("access-token", "root_by_access"),
            ("refresh-token", "root_by_refresh"),
        ):
            if r[column] is not None:
                aad = _credential_aad(kind, r["customer_id"], r["id"])
                found.append(
                    Sealed((kind, r["id"]), r[column], aad, yields=("root", r["customer_id"]))
                )
    for r in copy.rows["document_record"]:
        customer_id, category, version = r["customer_id"], r["category"], r["key_version"]
        if not sealing.by_field(r["ciphertext"]):
            aad = record_aad(customer_id, category, category, version)
            found.append(Sealed(("record", customer_id, category), r["ciphertext"], aad))
            continue
        # Sealed field by field: each field is a record of its own, and the
        # whole document, first, one more under the category's key.
        packed = sealing.unpack(r["ciphertext"])
        whole = packed.pop(sealing.WHOLE, None)
        if whole is not None:
            aad = record_aad(customer_id, category, category, version)
            found.append(Sealed(("record", customer_id, category), whole, aad))
        record_id = sealing.packed_record_id(category, packed)
        for name, blob in packed.items():
            key = field_key(category, name)
            aad = record_aad(customer_id, key, record_id, version)
            found.append(Sealed(("record", customer_id, key), blob, aad))
    for r in copy.rows["history_record"]:
        aad = record_aad(r["customer_id"], "history", r["id"], r["key_version"])
        found.append(Sealed(("record", r["customer_id"], "history"), r["ciphertext"], aad))
    for r in copy.rows["pending_deposit"]:
        found.append(
            Sealed(
                ("record", r["customer_id"], "pending deposit"),
                r["sealed"],
                _info(r["customer_id"]),
                opener=_open_box,
            )
        )
    return found


def attack(copy: Copy, known: frozenset[bytes] = frozenset()) -> set[Gives]:
    """Every key in the copy (and any ``known`` besides) against every
    ciphertext, until a fixed point; returns what opened."""
    keys = {data for data in copy.key_files.values() if len(data) == aead.KEY_BYTES} | known
    sealed = ciphertexts(copy)
    opened: set[Gives] = set()
    # Keys already taken as a category's, to derive every field key it
    # would give (vrm/keys/service.py, field_key_of); derived ones are not
    # derived from again.
    expanded: set[bytes] = set()
    progress = True
    while progress:
        progress = False
        for key in keys - expanded:
            derived = {field_key_of(key, name) for name in FIELD_KEYS}
            expanded |= derived | {key}
            keys |= derived
        for item in sealed:
            if item.what in opened:
                continue
            for key in list(keys):
                try:
                    plaintext = item.opener(key, item.ciphertext, item.aad)
                except aead.SealError:
                    continue
                opened.add(item.what)
                if item.yields is not None:
                    keys.add(plaintext)
                progress = True
                break
    return opened


def records(opened: set[Gives], customer_id: str) -> set[str]:
    return {w[2] for w in opened if w[0] == "record" and w[1] == customer_id}


def document(category: str) -> set[str]:
    """The records a document is in a copy: the whole of it, and one per
    field."""
    return {category, *(field_key(category, f) for f in CATEGORIES[category].fields)}


# Everything of a customer, as :func:`records` names what opened.
EVERYTHING = {ACCOUNT, *document("profile"), *document("preferences"), "history"}
