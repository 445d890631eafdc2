"""Token revocation (RFC 7009): a vendor ends one of its tokens."""

from __future__ import annotations

from authlib.oauth2.rfc7009 import RevocationEndpoint

from consent.oauth import store, tokens
from consent.oauth.authlib_models import Token, TokenLookup
from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.oauth.context import commit, conn
from consent.oauth.requests import Request
from vrm.dbtypes import utcnow


class Revocation(TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def revoke_token(self, token: Token, request: Request) -> None:
        if token.kind == "refresh_token":
            # RFC 7009 2.1: revoking a refresh token ends its access tokens too.
            tokens.revoke_family(conn(), token.row.grant_id, token.row.family_id)
        else:
            store.revoke_token(conn(), token.row.id, utcnow())
        commit()
