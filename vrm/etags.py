"""Entity tags and the If-Match and If-None-Match preconditions (RFC 9110
sections 8.8.3, 13.1.1, 13.1.2)."""

from __future__ import annotations

import hashlib

from vrm.errors import PreconditionFailed


def make_etag(revision: int, ciphertext: bytes) -> str:
    # Derived from the sealed bytes, so it changes with every write and says
    # nothing about the content.
    return f'"{revision}-{hashlib.sha256(ciphertext).hexdigest()[:16]}"'


def check_if_match(if_match: str | None, current: str) -> None:
    """Raise PreconditionFailed unless If-Match is absent, ``*``, or lists the
    current tag. If-Match uses the strong comparison: weak tags never match."""
    if if_match is None:
        return
    candidates = [c.strip() for c in if_match.split(",")]
    if "*" in candidates or current in candidates:
        return
    raise PreconditionFailed(
        "The document changed since you read it; fetch it again and reapply your change.",
        current_etag=current,
    )


def matches_if_none_match(header: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison, ``*`` matches any representation."""
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags
