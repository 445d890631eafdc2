"""The customer's grants: list, read, narrow or shorten, revoke.

Withdrawing consent is one request, as easy as giving it (GDPR Art. 7(3)).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session

from consent.grants import receipts, revocation, service, vendor_copy
from consent.grants.models import Grant
from consent.policy import parse_scope
from consent.scopes import PURPOSES
from vrm.db import SessionDep
from vrm.deps import CurrentCustomer, SettingsDep, VaultDep
from vrm.errors import NotFound, problems

router = APIRouter(prefix="/api/v1/me/grants", tags=["grants"])


class VendorSummary(BaseModel):
    """What the vendor says about itself now."""

    id: str
    name: str
    logo_uri: str | None
    policy_uri: str | None
    contacts: list[str]


class VendorAsConsented(VendorSummary):
    """The vendor as the customer saw it when they consented. Copies made
    by migration 0011 for older grants have ``recorded_at_consent`` false
    and the time of the upgrade: what was shown before is unknowable."""

    recorded_at: datetime
    recorded_at_consent: bool


class Change(BaseModel):
    at: datetime
    kind: str
    by: str
    detail: dict[str, Any]


class GrantPublic(BaseModel):
    id: str
    vendor: VendorAsConsented
    # Members of ``vendor`` the vendor has changed since (sorted), and the
    # vendor as it is now; ``[]`` and null when nothing changed.
    vendor_changed: list[str]
    vendor_now: VendorSummary | None
    status: str
    scopes: list[str]
    described: list[str]
    openid: bool
    purpose: str
    purpose_described: str
    legal_basis: str
    retention: str | None
    authorization_details: list[dict[str, Any]] | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    changes: list[Change]


class GrantList(BaseModel):
    items: list[GrantPublic]


class GrantPatch(BaseModel):
    """Narrow the grant (a subset of its scopes) or bring its expiry closer."""

    model_config = ConfigDict(extra="forbid")

    scopes: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=64)] | None = (
        None
    )
    expires_at: AwareDatetime | None = None


def public(session: Session, grant: Grant) -> GrantPublic:
    changes = service.changes(session, grant.id)
    vendor = vendor_copy.of_grant(session, grant, changes)
    return GrantPublic(
        id=grant.id,
        vendor=VendorAsConsented.model_validate(vendor.consented),
        vendor_changed=vendor.changed,
        vendor_now=VendorSummary.model_validate(vendor.now) if vendor.changed else None,
        status=service.status_of(grant),
        scopes=grant.scopes,
        described=[parse_scope(s).describe() for s in grant.scopes],
        openid=grant.openid,
        purpose=grant.purpose,
        purpose_described=PURPOSES.get(grant.purpose, grant.purpose),
        legal_basis=grant.legal_basis,
        retention=grant.retention,
        authorization_details=grant.authorization_details,
        created_at=grant.created_at,
        updated_at=grant.updated_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        revoked_by=grant.revoked_by,
        changes=[Change(at=c.at, kind=c.kind, by=c.by, detail=c.detail) for c in changes],
    )


@router.get("")
def list_grants(customer: CurrentCustomer, session: SessionDep) -> GrantList:
    """Every grant you gave, newest first, active or not."""
    return GrantList(
        items=[public(session, g) for g in service.list_for_customer(session, customer.id)]
    )


@router.get("/{grant_id}", responses=problems(NotFound))
def get_grant(grant_id: str, customer: CurrentCustomer, session: SessionDep) -> GrantPublic:
    return public(session, service.get_for_customer(session, customer.id, grant_id))


@router.get(
    "/{grant_id}/receipt",
    response_class=Response,
    responses={200: {"content": {receipts.MEDIA_TYPE: {}}}, **problems(NotFound)},
)
def grant_receipt(
    grant_id: str,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
    settings: SettingsDep,
) -> Response:
    """The consent record, signed (compact JWS, ES256, key at /oauth/jwks)."""
    grant = service.get_for_customer(session, customer.id, grant_id)
    token = receipts.receipt(session, vault, settings, grant)
    return Response(
        token,
        media_type=receipts.MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="consent-{grant.id}.jws"',
        },
    )


@router.patch("/{grant_id}", responses=problems(NotFound))
def narrow_grant(
    grant_id: str,
    body: GrantPatch,
    customer: CurrentCustomer,
    session: SessionDep,
    vault: VaultDep,
) -> GrantPublic:
    """Take scopes away or bring the expiry closer; takes effect on the
    vendor's very next request."""
    grant = service.get_for_customer(session, customer.id, grant_id)
    revocation.narrow(session, vault, grant, scopes=body.scopes, expires_at=body.expires_at)
    session.commit()
    session.refresh(grant)
    return public(session, grant)


@router.delete("/{grant_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(NotFound))
def revoke_grant(
    grant_id: str, customer: CurrentCustomer, session: SessionDep, vault: VaultDep
) -> None:
    """Withdraw consent: every token of the grant stops working at once."""
    grant = service.get_for_customer(session, customer.id, grant_id)
    revocation.revoke(session, vault, grant, by="customer")
    session.commit()
