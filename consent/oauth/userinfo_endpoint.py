"""The OIDC userinfo endpoint (OIDC Core 5.3): the profile fields a grant
allows, under a pairwise subject. The token is checked, and a refusal
worded, at the one bearer edge (consent/oauth/bearer.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from consent.audit import events as audit
from consent.audit import log as audit_log
from consent.oauth import bearer
from consent.oauth.userinfo import shown_fields
from consent.oauth.userinfo import userinfo as user_claims
from vrm.db import SessionDep
from vrm.dbtypes import utcnow
from vrm.deps import VaultDep

router = APIRouter(include_in_schema=False)


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo(request: Request, session: SessionDep, vault: VaultDep) -> JSONResponse:
    """OIDC userinfo: the profile fields the grant allows, under a pairwise sub.
    Refusals in the OIDC format (consent/oauth/bearer.py)."""
    try:
        active = bearer.active_token(session.connection(), vault, request.headers)
        if active.token.customer_id is None:  # client credentials: there is no user
            raise bearer.InvalidToken(bearer.NOT_ACTIVE, token_sent=True)
    except bearer.InvalidToken as exc:
        if not exc.token_sent:
            return bearer.oidc_error(401)
        return bearer.oidc_error(401, "invalid_token", "the access token is not active")
    if not active.openid:
        return bearer.oidc_error(403, "insufficient_scope", "the grant does not include openid")
    answer = user_claims(session, vault, active)
    fields = shown_fields(active, answer)
    if fields:
        # A read of the customer's data like any other: on the audit log,
        # committed before the answer is sent.
        assert active.grant is not None  # noqa: S101 - openid tokens have a grant
        event = audit.data_access(
            action="read",
            at=utcnow(),
            customer_id=active.grant.customer_id,
            vendor_id=active.vendor.id,
            grant_id=active.grant.id,
            subject=answer["sub"],
            purpose=active.grant.purpose,
            categories=["profile"],
            fields=fields,
            via="userinfo",
        )
        audit_log.append(session.connection(), [event])
        session.commit()
    return JSONResponse(answer)
