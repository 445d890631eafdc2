"""Checking a revocation notice from the store (docs/notices.md): a
Security Event Token (RFC 8417) pushed per RFC 8935.

:func:`verify` refuses, with the RFC 8935 error code to answer, anything
that is not a notice the store signed for this client: a body that is not
a compact JWS with ``typ: secevent+jwt``; a key not in the store's JWKS or
a signature that does not verify (``invalid_key``); another issuer
(``invalid_issuer``) or audience (``invalid_audience``); a notice signed
too long ago or in the future, or without the event (``invalid_request``).
Replays are the receiver's to catch (connectors/state.py), by ``jti``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

TYP = "secevent+jwt"
MEDIA_TYPE = "application/secevent+jwt"
EVENT_PATH = "/event-type/consent-withdrawn"
ALGORITHMS = ["ES256"]
# A notice's iat may be this far ahead of the receiver's clock.
CLOCK_SKEW = 60


class Refused(ValueError):
    """A notice refused, with its RFC 8935 error code."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err
        self.description = description


@dataclass(frozen=True)
class Notice:
    """What a checked notice asks: delete ``fields`` of ``subject``."""

    jti: str
    subject: str
    grant_id: str
    reason: str
    fields: list[str]
    event_timestamp: int
    # A grant shortened: delete ``fields`` by then (its expiry's own notice
    # comes then); None: delete them now.
    expires_at: int | None = None

    @property
    def now(self) -> bool:
        """Whether the notice asks for the deletion now."""
        return self.expires_at is None


def verify(
    token: bytes,
    *,
    keys: Callable[[bool], KeySet],
    issuer: str,
    client_id: str,
    now: float,
    max_age: int,
) -> Notice:
    """The notice in ``token``, checked; :class:`Refused` otherwise.
    ``keys(refresh)`` gives the store's JWKS, fetched again when
    ``refresh`` (a key id it does not know: the store may have rotated)."""
    try:
        text = token.decode("ascii")
        header_part = text.split(".", 1)[0]
        header = json.loads(_b64(header_part))
    except (UnicodeDecodeError, ValueError):
        raise Refused("invalid_request", "not a compact JWS") from None
    if not isinstance(header, dict) or header.get("typ") != TYP:
        raise Refused("invalid_request", f"typ must be {TYP}")
    if header.get("alg") not in ALGORITHMS:
        raise Refused("invalid_request", "alg must be ES256")
    kid = header.get("kid")
    key_set = keys(False)
    if kid is not None and not _has(key_set, kid):
        key_set = keys(True)
        if not _has(key_set, kid):
            raise Refused("invalid_key", "signed with a key the store does not publish")
    try:
        found = jws.deserialize_compact(text, key_set, algorithms=ALGORITHMS)
    except (JoseError, ValueError):
        raise Refused("invalid_key", "the signature does not verify") from None
    try:
        claims = json.loads(found.payload)
    except ValueError:
        raise Refused("invalid_request", "the claims are not JSON") from None
    if not isinstance(claims, dict):
        raise Refused("invalid_request", "the claims are not an object")
    if claims.get("iss") != issuer:
        raise Refused("invalid_issuer", "not issued by this connector's store")
    if claims.get("aud") != client_id:
        raise Refused("invalid_audience", "not addressed to this client")
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise Refused("invalid_request", "iat is missing")
    if iat > now + CLOCK_SKEW:
        raise Refused("invalid_request", "iat is in the future")
    if now - iat > max_age:
        raise Refused("invalid_request", "signed too long ago")
    return _notice(claims, issuer)


def _notice(claims: dict[str, Any], issuer: str) -> Notice:
    jti = claims.get("jti")
    sub_id = claims.get("sub_id")
    events = claims.get("events")
    event = events.get(issuer + EVENT_PATH) if isinstance(events, dict) else None
    if not isinstance(jti, str) or not jti:
        raise Refused("invalid_request", "jti is missing")
    if not isinstance(sub_id, dict) or sub_id.get("format") != "opaque":
        raise Refused("invalid_request", "sub_id must be an opaque subject")
    subject = sub_id.get("id")
    if not isinstance(subject, str) or not subject:
        raise Refused("invalid_request", "sub_id has no id")
    if not isinstance(event, dict):
        raise Refused("invalid_request", "no consent-withdrawn event")
    fields = event.get("fields")
    grant_id = event.get("grant_id")
    reason = event.get("reason")
    at = event.get("event_timestamp")
    if (
        not isinstance(fields, list)
        or not all(isinstance(f, str) for f in fields)
        or not isinstance(grant_id, str)
        or not isinstance(reason, str)
        or not isinstance(at, int)
    ):
        raise Refused("invalid_request", "the event lacks grant_id, reason, fields or its time")
    action = event.get("required_action")
    expires_at = event.get("expires_at")
    if action == "delete_copies_at_expiry":
        if not isinstance(expires_at, int) or isinstance(expires_at, bool):
            raise Refused("invalid_request", "delete_copies_at_expiry needs expires_at")
        return Notice(jti, subject, grant_id, reason, list(fields), at, expires_at)
    if action != "delete_copies":
        raise Refused("invalid_request", "required_action must be delete_copies")
    return Notice(jti, subject, grant_id, reason, list(fields), at)


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _has(key_set: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in key_set.keys)
