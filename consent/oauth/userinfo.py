"""OIDC userinfo: the granted profile fields, as standard claims, nothing more."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from consent.oauth import tokens
from consent.policy import claims
from vrm.keys.service import Vault
from vrm.records import service as records


def userinfo(session: Session, vault: Vault, active: tokens.ActiveToken) -> dict[str, Any]:
    customer_id = active.token.customer_id
    assert customer_id is not None  # noqa: S101 - openid tokens always have a customer
    answer: dict[str, Any] = {"sub": tokens.pairwise_subject(vault, active.vendor.id, customer_id)}
    reached = claims(active.accesses)
    if not reached:
        return answer
    # Of the claims' fields only: with the customer away, the grant's
    # escrow opens those and no more (vrm/records/sealing.py).
    profile = records.read_fields(
        session=session, vault=vault, customer_id=customer_id, category="profile", fields=reached
    )
    for field, claim in reached.items():
        if field in profile:
            answer[claim] = profile[field]
    return answer


def shown_fields(active: tokens.ActiveToken, answer: dict[str, Any]) -> list[str]:
    """The profile fields :func:`userinfo` put in ``answer``, by name."""
    return sorted(
        f"profile.{field}" for field, claim in claims(active.accesses).items() if claim in answer
    )
