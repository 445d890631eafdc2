"""Token introspection (RFC 7662): what a vendor's token may do right now,
the grant and its details included (RFC 9396 9.1)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from consent.oauth import tokens
from consent.oauth.authlib_models import Client, Token, TokenLookup
from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.oauth.details import granted_details
from consent.oauth.requests import Request


class Introspection(TokenLookup, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def authenticate_token(self, request: Request, client: Client) -> Token | None:
        # Authlib's, the token looked up in the request's transaction.
        token = self.find_token(request, client)
        if token is not None and self.check_permission(token, client, request):
            return token
        return None

    def check_permission(self, token: Token, client: Client, request: Request) -> bool:
        # A vendor may introspect its own tokens only.
        return token.check_client(client)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        active = token.active
        if active is None:
            return {"active": False}
        row = token.row
        end = row.expires_at if token.kind == "access_token" else row.refresh_expires_at
        body: dict[str, Any] = {
            "active": True,
            "client_id": row.vendor_id,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": active.scope,
            "iat": int(row.issued_at.timestamp()),
            "exp": int(end.timestamp()) if end else None,
            "iss": self.server.settings.issuer,
        }
        grant = active.grant
        if grant is not None and row.customer_id is not None:
            body["sub"] = tokens.pairwise_subject(self.server.vault, row.vendor_id, row.customer_id)
            body["grant_id"] = grant.id
            body["purpose"] = grant.purpose
            if grant.authorization_details is not None:
                body["authorization_details"] = granted_details(active.accesses, grant)
        return body
