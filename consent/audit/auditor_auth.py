"""Who may read the audit API's entries: an auditor (``vrm auditors add``)
with a client-credentials token holding ``audit:read``. A vendor's or a
customer's token is refused, whatever it holds; an auditor's token opens
nothing but the log (consent.policy.CLIENT_SCOPES)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from consent.oauth import bearer
from consent.oauth.bearer import InsufficientScope, InvalidToken
from consent.vendors.models import Vendor
from vrm.db import SessionDep
from vrm.deps import VaultDep
from vrm.errors import raises

SCOPE = "audit:read"
_ONLY_AUDITORS = "The audit API needs an auditor's client-credentials token with audit:read."


@raises(InvalidToken, InsufficientScope)
def current_auditor(request: Request, session: SessionDep, vault: VaultDep) -> Vendor:
    active = bearer.active_token(session.connection(), vault, request.headers)
    if (
        active.grant is not None
        or active.vendor.role != "auditor"
        or SCOPE not in active.vendor_scopes
    ):
        raise InsufficientScope(_ONLY_AUDITORS, scope=SCOPE)
    return active.vendor


AuditorDep = Annotated[Vendor, Depends(current_auditor)]
