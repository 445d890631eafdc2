"""C2SP checkpoints (c2sp.org/tlog-checkpoint): the text of a log's signed tree head.

A checkpoint's note text is the log's origin, the tree size in decimal, the
base64 root hash of the RFC 6962 Merkle tree at that size, then any extension
lines, each line ending in a newline::

    example.com/behind-the-sofa
    20852163
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

Signing and opening the note around it is :mod:`consent.audit.note`'s.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from consent.audit.note import NoteError, b64decode_strict, check_text

ROOT_SIZE = 32
"""A SHA-256 root hash's length (RFC 6962)."""

MAX_SIZE = 2**64 - 1
"""The largest tree size read or written: a 64-bit count of leaves, as the
cosignature formats and the witness protocol carry it."""

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint's note text (tlog-checkpoint, "Note text"). Built only
    valid: a bad origin, size, root or extension line is a :class:`NoteError`."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "the origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError("a tree size is an integer")
        if not 0 <= self.size <= MAX_SIZE:
            raise NoteError(f"a tree size is between 0 and {MAX_SIZE}")
        if len(self.root) != ROOT_SIZE:
            raise NoteError(f"a root hash is {ROOT_SIZE} bytes")
        for line in self.extensions:
            _check_line(line, "an extension line")

    def to_text(self) -> str:
        """The note text: origin, decimal size, base64 root hash and extension
        lines, each ending in a newline (tlog-checkpoint, "Note text")."""
        root = base64.b64encode(self.root).decode("ascii")
        lines = (self.origin, str(self.size), root, *self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """A checkpoint from its note text, strictly: at least three non-empty
        lines, each ending in a newline; the size in decimal without leading
        zeroes ("0" for an empty tree); the root hash canonical base64 of 32
        bytes (tlog-checkpoint, "Note text").

        The origin's recommended shape (a schema-less URL, no spaces, no plus)
        is not enforced: the spec tells clients not to assume it.
        """
        check_text(text)
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("a checkpoint has an origin, a size and a root hash line")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise NoteError("a tree size is decimal digits without leading zeroes")
        if len(size) > len(str(MAX_SIZE)):
            raise NoteError(f"a tree size is at most {MAX_SIZE}")
        root_hash = b64decode_strict(root, "the root hash")
        return cls(origin, int(size), root_hash, tuple(extensions))


def _check_line(line: str, what: str) -> None:
    if not line:
        raise NoteError(f"{what} is empty")
    if "\n" in line:
        raise NoteError(f"{what} is one line")
    check_text(line + "\n")
