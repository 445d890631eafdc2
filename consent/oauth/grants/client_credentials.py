"""The client credentials grant (RFC 6749 4.4): a vendor's token for its
own, vendor-wide scopes. Customer data is never a vendor's own, so no scope
naming it is ever granted this way."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant

from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.policy import VENDOR_SCOPES, parse_scopes


class VendorCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    granted = ""

    def validate_requested_scope(self) -> None:
        asked = (self.request.payload.scope or "").split()
        kept = [s for s in VENDOR_SCOPES if s in asked]
        if len(kept) != len(asked):
            # Customer data is never a vendor's own; a scope that is not
            # ours at all is ignored, as everywhere (scopes.parse_scopes).
            others = " ".join(s for s in asked if s not in VENDOR_SCOPES)
            accesses, openid = parse_scopes(others)
            if accesses or openid:
                kept = []
        if not kept:
            raise InvalidScopeError(
                "client credentials carry only vendor-wide scopes: " + " ".join(VENDOR_SCOPES)
            )
        self.granted = " ".join(kept)

    def generate_token(self, **kwargs: Any) -> dict[str, Any]:
        # What was granted, not what was asked (RFC 6749 5.1 "scope").
        return super().generate_token(**{**kwargs, "scope": self.granted})  # type: ignore[no-any-return]
