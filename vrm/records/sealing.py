"""How a document (profile, preferences) is sealed: field by field.

Each top-level field of a document category is sealed on its own, under
the customer's data key of that field (``profile.email``, vrm/catalogue's
``field_key``), so that a grant of one field escrows that field's key
alone (docs/keys.md, "Per-field keys"): with the customer away, the server
opens what the grant shares and not the fields beside it. Every field of
the catalogue is sealed, an empty one as ``null``, so that a copy of the
database does not tell which fields a customer filled in (each value is
padded to a bucket, vrm/crypto/aead.py).

The sealed fields are kept together in the document's one row
(``document_record.ciphertext``, :func:`pack`): a write stays one row, with
one revision. Ahead of them the row keeps the whole document sealed under
the category's key (:data:`WHOLE`), for those who read every field (the
customer; a vendor granted the whole category): they open one value where
the fields would be a dozen. That key opens every field anyway (each
field's derives from it), so the copy shows no one more than they could
read; a reader of some fields never has it.

A document written before per-field keys is one ciphertext under the
category's key, and one sealed by field before the whole copy has none;
both still open (:func:`by_field`, :func:`whole_of` tell them apart), and
are sealed again at their customer's next log-in
(:func:`vrm.records.service.seal_by_field`) or write.
"""

from __future__ import annotations

import functools
import json
import struct
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from vrm.catalogue import CATEGORIES, field_key
from vrm.keys.service import Vault, record_failed

_NULL = b"null"
# The name the whole document is packed under, first: no field's name is
# empty.
WHOLE = ""
# Packed fields begin with this byte, which a value sealed whole never
# does (it begins with its format byte, 1 or 2: vrm/crypto/aead.py). Then
# each sealed field: its name's length (1 byte), its name, its sealed
# value's length (4 bytes, big-endian), its sealed value.
_PACKED = b"F"
_NAME = struct.Struct(">B")
_VALUE = struct.Struct(">I")


class Malformed(ValueError):
    """Sealed fields that cannot be read apart."""


def keys_to_read(category: str, fields: Collection[str]) -> list[str]:
    """The data keys that open ``fields`` of ``category``: each field's
    key; for a reader of every field, the category's own, from which every
    field's derives, and which opens a document sealed whole (from before
    per-field keys). A category that is not a document (the history) has
    its one key."""
    cat = CATEGORIES[category]
    if cat.kind != "document" or set(cat.fields) <= set(fields):
        return [category]
    return [field_key(category, f) for f in cat.fields if f in fields]


def by_field(ciphertext: bytes) -> bool:
    """Whether a document's ciphertext is sealed field by field (else
    whole, under the category's key)."""
    return ciphertext[:1] == _PACKED


def pack(sealed: Iterable[tuple[str, bytes]]) -> bytes:
    parts: list[bytes] = [_PACKED]
    for name, blob in sealed:
        encoded = name.encode()
        parts += [_NAME.pack(len(encoded)), encoded, _VALUE.pack(len(blob)), blob]
    return b"".join(parts)


def whole_of(packed: bytes) -> bytes | None:
    """The whole document's sealed value, when it is packed first (a
    document sealed by field before the whole copy has none); raises
    Malformed."""
    if not by_field(packed):
        raise Malformed("sealed fields are malformed")
    at = len(_PACKED)
    try:
        (length,) = _NAME.unpack_from(packed, at)
        if length != len(WHOLE):
            return None
        (length,) = _VALUE.unpack_from(packed, at + _NAME.size)
    except struct.error:
        raise Malformed("sealed fields are malformed") from None
    at += _NAME.size + _VALUE.size
    if at + length > len(packed):
        raise Malformed("sealed fields are malformed")
    return packed[at : at + length]


def is_current(ciphertext: bytes) -> bool:
    """Whether a document's ciphertext is sealed as :func:`seal_fields`
    seals today: by field, with the whole copy first."""
    try:
        return by_field(ciphertext) and whole_of(ciphertext) is not None
    except Malformed:
        return False


def unpack(packed: bytes) -> dict[str, bytes]:
    """The sealed value of each field, by name; raises Malformed."""
    if not by_field(packed):
        raise Malformed("sealed fields are malformed")
    found: dict[str, bytes] = {}
    at, end = len(_PACKED), len(packed)
    try:
        while at < end:
            (length,) = _NAME.unpack_from(packed, at)
            at += _NAME.size
            name = packed[at : at + length].decode()
            at += length
            (length,) = _VALUE.unpack_from(packed, at)
            at += _VALUE.size
            found[name] = packed[at : at + length]
            at += length
    except (struct.error, UnicodeDecodeError):
        raise Malformed("sealed fields are malformed") from None
    if at != end:
        raise Malformed("sealed fields are malformed")
    return found


@functools.cache
def _label(name: str) -> bytes:
    """A field's name as it begins its member of a JSON object."""
    return json.dumps(name).encode() + b":"


def packed_record_id(category: str, names: Iterable[str]) -> str:
    """What each field's seal binds besides its key (which names the
    field): the document and every field packed with it, in order, so that
    a field dropped from the packing, or one from another document, does
    not open."""
    return f"{category}:{','.join(names)}"


def seal_fields(
    session: Session, vault: Vault, customer_id: str, category: str, data: Mapping[str, Any]
) -> bytes:
    """The document ``data`` (JSON values by field, each a field of the
    catalogue) sealed whole and field by field, packed."""
    sealed: list[tuple[str, bytes]] = []
    names = CATEGORIES[category].fields
    record_id = packed_record_id(category, names)
    filled: list[bytes] = []
    for name in names:
        value = data.get(name)
        plaintext = (
            _NULL
            if value is None
            else json.dumps(
                value, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode()
        )
        blob = vault.seal(
            session,
            customer_id=customer_id,
            category=field_key(category, name),
            record_id=record_id,
            plaintext=plaintext,
        )
        sealed.append((name, blob.ciphertext))
        if plaintext != _NULL:
            filled.append(_label(name) + plaintext)
    # What a reader of every field opens: the fields as open_fields joins
    # them, under the category's key, as a document sealed whole was.
    whole = vault.seal(
        session,
        customer_id=customer_id,
        category=category,
        record_id=category,
        plaintext=b"{" + b",".join(filled) + b"}",
    )
    return pack([(WHOLE, whole.ciphertext), *sealed])


def open_whole(
    conn: Connection,
    vault: Vault,
    customer_id: str,
    category: str,
    key_version: int,
    ciphertext: bytes,
) -> bytes:
    """A document sealed whole under its category's key (the whole copy,
    or a document from before per-field keys): the one record of its
    category, whose record id is the category."""
    return vault.open(
        conn,
        customer_id=customer_id,
        category=category,
        record_id=category,
        key_version=key_version,
        ciphertext=ciphertext,
    )


def open_fields(
    conn: Connection,
    vault: Vault,
    customer_id: str,
    category: str,
    key_version: int,
    packed: bytes,
    fields: Collection[str] | None,
) -> bytes:
    """The JSON object of ``fields`` (every field if None) of a document
    sealed field by field, the empty ones left out, as a document sealed
    whole reads: only those fields' keys are used, or the category's for
    every field. A field of the catalogue that is not packed (one added to
    the catalogue since) is empty; a packed field that is not of the
    catalogue is damage."""
    catalogue = CATEGORIES[category].fields
    try:
        if fields is None or set(catalogue) <= set(fields):
            whole = whole_of(packed)
            if whole is not None:
                return open_whole(conn, vault, customer_id, category, key_version, whole)
        sealed = unpack(packed)
    except Malformed:
        raise record_failed(category) from None
    sealed.pop(WHOLE, None)
    if not set(sealed) <= set(catalogue):
        raise record_failed(category)
    record_id = packed_record_id(category, sealed)
    wanted = [f for f in catalogue if (fields is None or f in fields) and f in sealed]
    values = vault.open_each(
        conn,
        customer_id=customer_id,
        records=[(field_key(category, f), record_id, key_version, sealed[f]) for f in wanted],
        failing_as=category,
    )
    parts = [
        _label(name) + value for name, value in zip(wanted, values, strict=True) if value != _NULL
    ]
    return b"{" + b",".join(parts) + b"}"


__all__ = [
    "WHOLE",
    "Malformed",
    "by_field",
    "is_current",
    "keys_to_read",
    "open_fields",
    "open_whole",
    "pack",
    "packed_record_id",
    "seal_fields",
    "unpack",
    "whole_of",
]
