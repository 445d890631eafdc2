"""Error descriptions the authorization server sends back."""

from __future__ import annotations


def ascii_only(text: str) -> str:
    """RFC 6749 error descriptions allow printable ASCII without " and \\
    (sections 5.2 and 4.1.2.1, ``error_description``)."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


def quoted(name: str) -> str:
    """A parameter name the client sent, fit for an error description."""
    return "'" + ascii_only(name[:64]) + "'"
