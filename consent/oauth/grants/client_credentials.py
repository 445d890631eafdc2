"""The client credentials grant (RFC 6749 4.4): a client's token for its
own scopes, by its role: a vendor's feed (``feed:read``), an auditor's log
(``audit:read``). Customer data is never a client's own, so no scope naming
it is ever granted this way."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant

from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.policy import CLIENT_SCOPES, parse_scopes

ALL_CLIENT_SCOPES = frozenset(s for scopes in CLIENT_SCOPES.values() for s in scopes)


class VendorCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    granted = ""

    def validate_requested_scope(self) -> None:
        asked = (self.request.payload.scope or "").split()
        own = CLIENT_SCOPES[self.request.client.vendor.role]
        kept = [s for s in own if s in asked]
        if len(kept) != len(asked):
            # Customer data is never a client's own, and another role's
            # scope never this one's; a scope that is not ours at all is
            # ignored, as everywhere (scopes.parse_scopes).
            others = " ".join(s for s in asked if s not in own)
            accesses, openid = parse_scopes(others)
            if accesses or openid or any(s in others.split() for s in ALL_CLIENT_SCOPES):
                kept = []
        if not kept:
            raise InvalidScopeError(
                "client credentials carry only this client's own scopes: " + " ".join(own)
            )
        self.granted = " ".join(kept)

    def generate_token(self, **kwargs: Any) -> dict[str, Any]:
        # What was granted, not what was asked (RFC 6749 5.1 "scope").
        return super().generate_token(**{**kwargs, "scope": self.granted})  # type: ignore[no-any-return]
