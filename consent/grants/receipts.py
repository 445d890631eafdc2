"""Consent records and signed receipts.

The record follows the information elements of ISO/IEC TS 27560 (consent
record information structure) with W3C DPV terms: who consented (as the
vendor knows them: the pairwise subject), to whom, for what purpose on what
legal basis, which data, when, for how long, and every later change. The
receipt is that record signed as a compact JWS (ES256) with the server key
published at /oauth/jwks, so the customer can hand it to anyone and the
vendor can check it is genuine.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from joserfc import jws
from sqlmodel import Session

from consent.grants import service, vendor_copy
from consent.grants.models import Grant
from consent.oauth import keys
from consent.policy import parse_scope
from consent.scopes import PURPOSES
from vrm.dbtypes import utcnow
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault
from vrm.settings import Settings

SCHEMA = "urn:vrm:consent-record:1"
MEDIA_TYPE = "application/jose"
TYP = "consent-receipt+jwt"

_STATUS = {
    "active": "dpv:ConsentGiven",
    "revoked": "dpv:ConsentWithdrawn",
    "expired": "dpv:ConsentExpired",
}


def _time(value: datetime | None) -> str | None:
    return vendor_copy.iso(value) if value is not None else None


# The record's names for the members of a vendor copy.
_CONTROLLER = {"name": "name", "policy_uri": "privacy_notice", "logo_uri": "logo"}


def _controller(copy: dict[str, Any]) -> dict[str, Any]:
    out = {"id": copy["id"]}
    out.update((_CONTROLLER[k], copy[k]) for k in ("name", "policy_uri", "logo_uri"))
    out["contacts"] = copy["contacts"]
    return out


def record(session: Session, vault: Vault, settings: Settings, grant: Grant) -> dict[str, Any]:
    """The consent record. ``data_controller`` is the vendor as the customer
    saw it when consenting (:mod:`consent.grants.vendor_copy`); when the
    vendor has changed since, ``data_controller_changed`` names what and
    ``data_controller_now`` says what it is now (else ``[]`` and null)."""
    changes = service.changes(session, grant.id)
    vendor = vendor_copy.of_grant(session, grant, changes)
    consented = vendor.consented
    return {
        "schema": SCHEMA,
        "schema_basis": "ISO/IEC TS 27560:2023",
        "record_id": grant.id,
        "issuer": settings.issuer,
        "issued_at": _time(utcnow()),
        "data_subject": {
            # The identifier this vendor knows the customer by, and no other.
            "id": pairwise_subject(vault, grant.vendor_id, grant.customer_id),
            "id_type": "pairwise",
        },
        "data_controller": _controller(consented)
        | {
            "recorded_at": consented["recorded_at"],
            "recorded_at_consent": consented["recorded_at_consent"],
        },
        "data_controller_changed": sorted(_CONTROLLER.get(k, k) for k in vendor.changed),
        "data_controller_now": _controller(vendor.now) if vendor.changed else None,
        "processing": {
            "purpose": grant.purpose,
            "purpose_described": PURPOSES.get(grant.purpose, grant.purpose),
            "legal_basis": grant.legal_basis,
            "personal_data": [
                {"scope": s, "described": parse_scope(s).describe()} for s in grant.scopes
            ],
            "identity": grant.openid,
            "retention": grant.retention,
            "authorization_details": grant.authorization_details,
        },
        "consent": {
            "type": "dpv:ExpressedConsent",
            "status": _STATUS[service.status_of(grant)],
            "given_at": _time(grant.created_at),
            "expires_at": _time(grant.expires_at),
            "withdrawn_at": _time(grant.revoked_at),
            "withdrawn_by": grant.revoked_by,
            "method": "web consent page, fields chosen by the data subject",
        },
        "history": [
            {"at": _time(c.at), "event": c.kind, "by": c.by, "detail": c.detail} for c in changes
        ],
    }


def receipt(session: Session, vault: Vault, settings: Settings, grant: Grant) -> str:
    key = keys.signing_key(vault)
    header = {"alg": keys.ALG, "typ": TYP, "kid": key.kid or ""}
    payload = json.dumps(record(session, vault, settings, grant), separators=(",", ":"))
    return jws.serialize_compact(header, payload, key, algorithms=[keys.ALG])
