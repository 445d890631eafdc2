"""Cursors: a position on the change log, given to one reader, MACed.

A position is "after this one": a log position, and within it a grant id
(one change may be sent once per grant of the vendor's with the customer).
No grant id means "after everything at this position".

A cursor is ``v2.<seq>[.<grant_id>]`` followed by a 128-bit HMAC-SHA256
(RFC 2104; truncated as its section 5 allows) of that text and of who it
was given to (:func:`for_feed`: a vendor's feed; :func:`for_history`: one
grant's history reads), all in unpadded base64url. So a cursor the server
did not give out, or gave to another vendor or grant, is refused with 400
as docs/vendors.md says, rather than read as whatever position it names.
(Cursors of the unMACed ``v1`` format, given out before, are refused too:
the reader starts again without one, which delivery at least once allows.)

The MAC key is derived with HKDF (RFC 5869) from the server key
``pairwise-subject`` under a label of its own, rather than being a server
key of its own: every installation that has a feed already holds that key
(every feed item names a pairwise subject), so there is no new key file for
``vrm init`` to create, an operator to back up, or an upgrade to miss.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vrm.errors import BadRequest
from vrm.keys.service import Vault

_TEXT = re.compile(r"^v2\.(0|[1-9][0-9]{0,18})(?:\.([0-9a-f]{1,64}))?$")
# Unpadded base64url of at most the longest text and its MAC.
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{27,138}$")
_MAC_BYTES = 16
_BASE_KEY = "pairwise-subject"
_LABEL = b"vrm cursor mac v2"
REFUSED = "The cursor is not one this server gave out to you; start again without one."


@dataclass(frozen=True)
class Position:
    seq: int
    grant_id: str | None = None


START = Position(0)


@functools.lru_cache(maxsize=4)
def _derive(base_key: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_LABEL).derive(base_key)


@dataclass(frozen=True)
class Cursors:
    """Cursors for one reader: encodes positions for it, and decodes only
    the cursors it was given."""

    key: bytes
    holder: bytes

    def _mac(self, text: bytes) -> bytes:
        mac = hmac.new(self.key, self.holder + b"\0" + text, hashlib.sha256)
        return mac.digest()[:_MAC_BYTES]

    def encode(self, position: Position) -> str:
        text = f"v2.{position.seq}" + (f".{position.grant_id}" if position.grant_id else "")
        raw = text.encode() + self._mac(text.encode())
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, cursor: str) -> Position:
        match = None
        if _CURSOR.match(cursor):
            try:
                raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            except (binascii.Error, ValueError):
                raw = b""
            text, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
            # The MAC first, in constant time; only then is the text looked at.
            if len(raw) > _MAC_BYTES and hmac.compare_digest(mac, self._mac(text)):
                match = _TEXT.match(text.decode("ascii", errors="replace"))
        if match is None:
            raise BadRequest(REFUSED)
        return Position(int(match.group(1)), match.group(2))


def _cursors(vault: Vault, *holder: str) -> Cursors:
    key = _derive(vault.keystore.server_key(_BASE_KEY))
    return Cursors(key, "\0".join(holder).encode())


def for_feed(vault: Vault, vendor_id: str) -> Cursors:
    """The cursors of a vendor's feed (GET /v1/feed)."""
    return _cursors(vault, "feed", vendor_id)


def for_history(vault: Vault, vendor_id: str, grant_id: str) -> Cursors:
    """The cursors of one grant's incremental history reads
    (GET /v1/data/history?since=)."""
    return _cursors(vault, "history", vendor_id, grant_id)
