"""Opaque cursors: a position on the change log.

A position is "after this one": a log position, and within it a grant id
(one change may be sent once per grant of the vendor's with the customer).
No grant id means "after everything at this position". The text is
``v1.<seq>[.<grant_id>]`` in unpadded base64url: opaque to the vendor, and
a made-up cursor only moves the reader within what it may read anyway.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from vrm.errors import BadRequest

_TEXT = re.compile(r"^v1\.(0|[1-9][0-9]{0,18})(?:\.([0-9a-f]{1,64}))?$")


@dataclass(frozen=True)
class Position:
    seq: int
    grant_id: str | None = None


START = Position(0)


def encode(position: Position) -> str:
    text = f"v1.{position.seq}" + (f".{position.grant_id}" if position.grant_id else "")
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def decode(cursor: str) -> Position:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    match = _TEXT.match(text)
    if match is None:
        raise BadRequest("The cursor is not one this server gave out.")
    return Position(int(match.group(1)), match.group(2))
