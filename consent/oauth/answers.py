"""The authorization server's JSON answers: a token, an error, an
introspection, a registration. None of them may be cached (RFC 6749 5.1)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

_ENCODE_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_NO_STORE = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))
# Authlib's header lists, as raw ASGI headers (Authlib passes the same few
# lists on every answer: a token, an error, an introspection).
_RAW_HEADERS: dict[tuple[tuple[str, str], ...], list[tuple[bytes, bytes]]] = {}
_RAW_HEADERS_KEPT = 64


def _raw_headers(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    raw = _RAW_HEADERS.get(headers)
    if raw is None:
        names = {name.lower() for name, _ in headers}
        raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in dict(headers).items()
            if name.lower() not in ("cache-control", "pragma", "content-length")
        ]
        raw.extend(_NO_STORE)
        if "content-type" not in names:
            raw.append((b"content-type", b"application/json"))
        if len(_RAW_HEADERS) < _RAW_HEADERS_KEPT:
            _RAW_HEADERS[headers] = raw
    return raw


class JSONAnswer(Response):
    """A JSON answer of the authorization server (a token, an error, an
    introspection, a registration), never to be cached (RFC 6749 5.1): the
    headers Authlib gives, with ``Cache-Control: no-store`` and
    ``Pragma: no-cache`` whatever it gave for those. Built without
    Starlette's generic header handling, which cost a large share of a
    token answer (docs/performance.md)."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int, headers: Any = ()) -> None:
        self.status_code = status_code
        self.background = None
        self.body = _ENCODE_JSON(content).encode()
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.raw_headers = [
            *_raw_headers(tuple(pairs)),
            (b"content-length", str(len(self.body)).encode()),
        ]
