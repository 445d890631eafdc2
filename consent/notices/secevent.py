"""A revocation notice as a Security Event Token (RFC 8417).

The Shared Signals Framework 1.0 profile: header ``typ: secevent+jwt``; no
``sub`` and no ``exp``; the subject in ``sub_id`` (RFC 9493 format
``opaque``: the pairwise subject the vendor knows the customer by); one
event, keyed by :func:`event_type`. Signed ES256 with the server key
published at ``/oauth/jwks`` (consent/oauth/keys.py).

The event (docs/notices.md):

``grant_id``
    The grant that ended or shrank.
``reason``
    ``revoked``, ``narrowed``, ``expired``, ``account_deleted``, or
    ``shortened`` (the grant now ends sooner: see ``expires_at``).
``categories``, ``fields``
    What the vendor must delete: the fields as the feed's tombstone names
    them (``profile.email``, ``history``), and their categories.
``event_timestamp``
    When the grant ended or shrank (seconds since the epoch).
``initiating_entity``
    ``user`` (the customer), ``admin`` (the operator disabled the vendor),
    ``policy`` (expiry).
``required_action``
    ``delete_copies``; for ``shortened``, ``delete_copies_at_expiry``.
``expires_at``
    For ``shortened`` only: the grant's new end (seconds since the epoch),
    by which the vendor must have deleted ``fields``. The expiry's own
    notice comes then.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jws

from consent.oauth import keys
from vrm.keys.service import Vault

TYP = "secevent+jwt"
MEDIA_TYPE = "application/secevent+jwt"
EVENT_PATH = "/event-type/consent-withdrawn"
REQUIRED_ACTION = "delete_copies"
AT_EXPIRY = "delete_copies_at_expiry"


def event_type(issuer: str) -> str:
    """The event's URI: the issuer's, so it names this kind of store."""
    return issuer.rstrip("/") + EVENT_PATH


@dataclass(frozen=True)
class Withdrawal:
    """What one notice tells: its tombstone, as the vendor must hear it."""

    jti: str
    txn: str
    client_id: str
    subject: str
    grant_id: str
    reason: str
    fields: list[str]
    at: datetime
    initiating_entity: str
    expires_at: datetime | None = None


def claims(issuer: str, withdrawal: Withdrawal, now: datetime) -> dict[str, Any]:
    event = {
        "grant_id": withdrawal.grant_id,
        "reason": withdrawal.reason,
        "categories": sorted({name.split(".", 1)[0] for name in withdrawal.fields}),
        "fields": sorted(withdrawal.fields),
        "event_timestamp": int(withdrawal.at.timestamp()),
        "initiating_entity": withdrawal.initiating_entity,
        "required_action": REQUIRED_ACTION,
    }
    if withdrawal.expires_at is not None:
        event["expires_at"] = int(withdrawal.expires_at.timestamp())
        event["required_action"] = AT_EXPIRY
    return {
        "iss": issuer,
        "aud": withdrawal.client_id,
        "jti": withdrawal.jti,
        "iat": int(now.timestamp()),
        "txn": withdrawal.txn,
        "sub_id": {"format": "opaque", "id": withdrawal.subject},
        "events": {event_type(issuer): event},
    }


def token(vault: Vault, issuer: str, withdrawal: Withdrawal, now: datetime) -> str:
    """The signed SET, compact. Signed afresh at each attempt (``iat`` is
    the attempt's), with the same ``jti``."""
    key = keys.signing_key(vault)
    header = {"alg": keys.ALG, "typ": TYP, "kid": key.kid or ""}
    payload = json.dumps(claims(issuer, withdrawal, now), separators=(",", ":"))
    return jws.serialize_compact(header, payload, key, algorithms=[keys.ALG])
