"""What one log entry says, as bytes every verifier computes the same way.

An entry is a JSON object, canonical in the sense of RFC 8785 for the values
it may hold: keys sorted, no whitespace, UTF-8, strings escaped only where
JSON requires it, integers only (no floats), so that a verifier written in
another language re-encodes it to the same bytes. Its members (docs/audit.md
lists each type's):

``v``
    The format's version: 1.
``type``
    What happened: one of :data:`TYPES`.
``at``
    When, in UTC, RFC 3339 with microseconds: ``2026-12-07T05:10:00.123456Z``.
``customer``
    Whom it is about, by pseudonym (:func:`pseudonym`): never the account id,
    the email or the vendor's pairwise subject.
``commitment``
    SHA-256 of the customer's audit salt and the canonical JSON of what is
    personal about the event (the account id, the vendor's pairwise subject,
    a deposited event's id): the customer can prove the entry is theirs by
    showing the salt and the values; once the account is erased, with its
    salt, nobody can.
``vendor``, ``grant``, ``purpose``, ``categories``, ``fields``, ...
    Names of things, never personal values.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

VERSION = 1

# Every type of entry (docs/audit.md#entry-types).
TYPES = frozenset(
    {
        # Consent (consent/grants).
        "consent.granted",
        "consent.narrowed",
        "consent.shortened",
        "consent.revoked",
        "consent.expired",
        "consent.denied",
        # Tokens (consent/oauth).
        "token.issued",
        "token.refreshed",
        "token.revoked",
        "token.reuse_detected",
        "token.family_revoked",
        # Data (vrm/vendor_api, consent/oauth/userinfo).
        "data.read",
        "data.deposited",
        # The account (vrm/accounts, vrm/export).
        "account.exported",
        "account.erased",
        # Vendors and auditors (consent/vendors).
        "vendor.registered",
        "vendor.disabled",
        "auditor.registered",
        "auditor.disabled",
        # Server keys (vrm keys rotate); a customer's root key moving from
        # the key store to them (vrm.accounts.service.log_in).
        "key.rotated",
        "key.moved_to_customer",
        # Revocation notices pushed to vendors (consent/notices): every
        # attempt, and the one the vendor acknowledged.
        "notice.attempted",
        "notice.acknowledged",
    }
)

# A salt's length, in bytes (vrm.accounts.models.Customer.audit_salt).
SALT_BYTES = 32
_PSEUDONYM = b"vrm audit pseudonym v1"


class EntryError(ValueError):
    """An event that cannot be written as an entry (a programming error)."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, before it is an entry.

    ``details`` become members of the entry as they are; ``personal`` is
    only committed to (:func:`commitment`), never written."""

    type: str
    at: datetime
    customer_id: str | None = None
    vendor_id: str | None = None
    grant_id: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    personal: Mapping[str, Any] = field(default_factory=dict)


def pseudonym(salt: bytes) -> str:
    """The customer's name in the log: keyed by their salt, so it says
    nothing once the salt is erased, and is not the pairwise subject any
    vendor knows them by."""
    return hmac.new(salt, _PSEUDONYM, hashlib.sha256).hexdigest()[:32]


def commitment(salt: bytes, personal: Mapping[str, Any]) -> str:
    """SHA-256 of the salt and the canonical JSON of ``personal``, in hex."""
    return hashlib.sha256(salt + canonical(personal)).hexdigest()


def timestamp(at: datetime) -> str:
    if at.tzinfo is None:
        raise EntryError("an entry's time must be aware")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def body(event: Event, salt: bytes | None, pseudonym_: str | None = None) -> bytes:
    """The entry's bytes: the leaf the Merkle tree hashes. ``pseudonym_``
    is the salt's :func:`pseudonym`, when the caller has it already."""
    if event.type not in TYPES:
        raise EntryError(f"unknown entry type {event.type!r}")
    entry: dict[str, Any] = {"v": VERSION, "type": event.type, "at": timestamp(event.at)}
    if event.customer_id is not None:
        if salt is None:
            raise EntryError("an entry about a customer needs their salt")
        entry["customer"] = pseudonym_ or pseudonym(salt)
        personal = {"customer_id": event.customer_id, **event.personal}
        entry["commitment"] = commitment(salt, personal)
    elif event.personal:
        raise EntryError("personal values without a customer to commit them to")
    if event.vendor_id is not None:
        entry["vendor"] = event.vendor_id
    if event.grant_id is not None:
        entry["grant"] = event.grant_id
    for name, value in event.details.items():
        if name in entry:
            raise EntryError(f"detail {name!r} would replace the entry's own member")
        entry[name] = value
    return canonical(entry)


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON for what entries hold (objects with ASCII
    keys, arrays, strings, integers, booleans, null), as UTF-8. orjson
    writes it: sorted keys, no whitespace, only the escapes JSON requires
    (``\\n`` and the like, ``\\u00xx`` in lower case for the other control
    characters), byte for byte what ``json.dumps(..., sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`` writes (tests/audit), at a
    tenth of the cost: ``vrm audit verify`` re-encodes every entry."""
    _check(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


_PLAIN = (str, bool, type(None))
_MAX_INT = 2**53 - 1


def _check(value: Any) -> None:
    # Floats have no single decimal form, and non-ASCII keys sort
    # differently by UTF-16 code units (RFC 8785) than by code points.
    # Exact types first: most members are strings (a verifier checks a
    # million entries).
    kind = type(value)
    if kind in _PLAIN:
        return
    if kind is int:
        if -_MAX_INT <= value <= _MAX_INT:
            return
        raise EntryError("integers in an entry must be exact in IEEE 754 doubles")
    if kind is list or kind is tuple:
        for item in value:
            if type(item) is not str:
                _check(item)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                raise EntryError(f"entry keys must be ASCII strings, not {key!r}")
            if type(item) is not str:
                _check(item)
        return
    raise EntryError(f"an entry cannot hold a {kind.__name__}")


def parse(data: bytes) -> dict[str, Any]:
    """An entry's members, checking that ``data`` is its canonical form."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EntryError(f"not JSON: {exc}") from None
    if type(value) is not dict:
        raise EntryError("an entry is a JSON object")
    # _check, unrolled for an entry's shape (members that are strings or
    # lists of strings): a verifier parses a million entries.
    if not "".join(value).isascii():
        raise EntryError("entry keys must be ASCII")
    for item in value.values():
        kind = type(item)
        if kind is str:
            continue
        if kind is list:
            for element in item:
                if type(element) is not str:
                    _check(element)
            continue
        _check(item)
    if orjson.dumps(value, option=orjson.OPT_SORT_KEYS) != data:
        raise EntryError("not in canonical form")
    if value.get("v") != VERSION:
        raise EntryError(f"unknown entry version {value.get('v')!r}")
    if value.get("type") not in TYPES:
        raise EntryError(f"unknown entry type {value.get('type')!r}")
    return value
