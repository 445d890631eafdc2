"""The one parser for JSON from outside: bodies, form fields that hold JSON,
JWT headers and payloads, cursors. HTTP bodies come through
:func:`loads_body`, which also reads the charset of the Content-Type.

Python's ``json.loads`` accepts what other parsers refuse or cannot hold:
``NaN`` and ``Infinity``, ``1e999`` (read as ``inf``, written back as
``Infinity``, which no strict parser reads, or as ``null`` by pydantic),
numbers of thousands of digits (slow to convert), and nesting deep enough to
exhaust the interpreter's recursion limit. :func:`loads` refuses each with a
:class:`Rejected` that says which limit was crossed, so every caller can
answer its own documented error instead of a 500.

``Rejected`` is a ``ValueError``; :class:`Malformed` (syntax, encoding,
depth, length) is also a ``json.JSONDecodeError``, so code that already
catches syntax errors catches these too. :class:`NonFinite` is kept apart
because it is a well-formed document whose value no store can round-trip:
the HTTP API answers it with 422, not 400.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Deeper than any document in the catalogue needs (the deepest is a few
# levels); far below the recursion limit.
MAX_DEPTH = 32
# Longest number literal: 64 characters hold any float64 or int64 many times
# over; Python's own limit for int conversion is 4300 digits.
MAX_NUMBER_CHARS = 64


class Rejected(ValueError):
    """Input refused by :func:`loads`; ``reason`` names the limit crossed."""

    reason: str = "syntax"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Malformed(Rejected, json.JSONDecodeError):
    """Not JSON that this server reads: bad syntax, bad encoding, too deep,
    a number too long."""

    def __init__(self, message: str, reason: str, doc: str = "", pos: int = 0) -> None:
        json.JSONDecodeError.__init__(self, message, doc, pos)
        self.message = message
        self.reason = reason


class NonFinite(Rejected):
    """A number that is not finite: NaN, Infinity, or one too large for a
    64-bit float (such as ``1e999``)."""

    reason = "non-finite"


def _constant(name: str) -> Any:
    raise NonFinite(f"{name} is not a JSON number this server accepts")


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise Malformed("a number is too long", "number-too-long")
    value = float(text)
    if not math.isfinite(value):
        raise NonFinite("a number is too large to store")
    return value


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise Malformed("a number is too long", "number-too-long")
    return int(text)


# A \\u escape of a UTF-16 surrogate: paired, it decodes to one character;
# alone, to a string that cannot be encoded as UTF-8 again (nor stored).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _strings_encodable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _depth_within(value: Any, limit: int) -> bool:
    # Level by level, without recursion, so a deep document cannot exhaust
    # the stack here either (and a list per level is cheaper than a stack
    # entry per container: this walk runs on every body).
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return False
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below += [child for child in children if isinstance(child, dict | list)]
        level = below
    return True


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` (UTF-8 when bytes), or raise :class:`Rejected`.

    Arrays and objects may nest ``max_depth`` levels at most.
    """
    if isinstance(data, bytes | bytearray):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("the body is not valid UTF-8", "encoding") from None
    else:
        text = data
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except Rejected:
        raise
    except RecursionError:
        raise Malformed(f"JSON nested deeper than {max_depth} levels", "too-deep") from None
    except json.JSONDecodeError as exc:
        raise Malformed(exc.msg, "syntax", exc.doc, exc.pos) from None
    if not _depth_within(value, max_depth):
        raise Malformed(f"JSON nested deeper than {max_depth} levels", "too-deep")
    if _SURROGATE_ESCAPE.search(text) and not _strings_encodable(value):
        raise Malformed("a string holds an unpaired UTF-16 surrogate", "encoding")
    return value


# RFC 8259 section 8.1: JSON exchanged between systems is UTF-8. Its media
# type defines no charset (section 11), but a sender that names another
# one means bytes this server would read as different characters: refuse.
_UTF8 = {"utf-8", "utf8"}


def is_json_media(content_type: str | None) -> bool:
    """Whether a Content-Type announces JSON, as FastAPI decides it
    (``application/json`` or ``application/*+json``)."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def loads_body(body: bytes, content_type: str | None, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse an HTTP body sent as ``content_type``, or raise :class:`Rejected`.

    Size is the caller's limit: bodies are capped before they are read
    (``VRM_MAX_BODY_BYTES``, vrm.middleware.BodyLimitMiddleware)."""
    if content_type and ";" in content_type:
        for parameter in content_type.split(";")[1:]:
            name, _, value = parameter.partition("=")
            name = name.strip().lower()
            if name == "charset*":  # RFC 2231: charset*=us-ascii'en'utf-16
                value = value.rpartition("'")[2]
            elif name != "charset":
                continue
            if value.strip().strip('"').lower() not in _UTF8:
                raise Malformed(
                    "JSON is sent as UTF-8 (RFC 8259 section 8.1), not in the charset named",
                    "encoding",
                )
    return loads(body, max_depth=max_depth)
