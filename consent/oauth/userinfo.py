"""OIDC userinfo: the granted profile fields, as standard claims, nothing more."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from consent.oauth import tokens
from consent.scopes import Access
from vrm.keys.service import Vault
from vrm.records import service as records

# Our profile field -> the OIDC standard claim carrying it.
CLAIMS = {
    "given_name": "given_name",
    "family_name": "family_name",
    "email": "email",
    "phone": "phone_number",
    "postal_address": "address",
    "birth_date": "birthdate",
    "language": "locale",
}


def granted_profile_fields(accesses: list[Access]) -> list[str]:
    fields: set[str] = set()
    for a in accesses:
        if a.category == "profile" and a.action == "read":
            fields |= set(CLAIMS) if a.field is None else {a.field}
    return sorted(fields)


def userinfo(session: Session, vault: Vault, active: tokens.ActiveToken) -> dict[str, Any]:
    customer_id = active.token.customer_id
    assert customer_id is not None  # noqa: S101 - openid tokens always have a customer
    claims: dict[str, Any] = {"sub": tokens.pairwise_subject(vault, active.vendor.id, customer_id)}
    fields = granted_profile_fields(active.accesses)
    if not fields:
        return claims
    profile = records.read_document(
        session=session, vault=vault, customer_id=customer_id, category="profile"
    ).data.model_dump(mode="json", exclude_none=True)
    for field in fields:
        if field in profile:
            claims[CLAIMS[field]] = profile[field]
    return claims
