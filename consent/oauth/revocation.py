"""Token revocation (RFC 7009): a vendor ends one of its tokens."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidGrantError
from authlib.oauth2.rfc7009 import RevocationEndpoint

from consent.audit import events as audit
from consent.oauth import store, tokens
from consent.oauth.authlib_models import Client, Token, TokenLookup
from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.oauth.requests import Request
from vrm.dbtypes import utcnow


class Revocation(TokenLookup, RevocationEndpoint):
    # A public client (vrm-me) revokes its own tokens with its id alone
    # (RFC 7009 2.1); Authlib takes "none" only from a client registered
    # with it, never in place of a confidential client's secret.
    CLIENT_AUTH_METHODS = [*TOKEN_AUTH_METHODS, "none"]

    def authenticate_token(self, request: Request, client: Client) -> Token | None:
        # Authlib's, the token looked up in the request's transaction.
        token = self.find_token(request, client)
        if token is not None and not token.check_client(client):
            raise InvalidGrantError()
        return token

    def revoke_token(self, token: Token, request: Request) -> None:
        tx = request.tx
        row = token.row
        if token.kind == "refresh_token":
            # RFC 7009 2.1: revoking a refresh token ends its access tokens too.
            tokens.revoke_family(
                tx.conn,
                vendor_id=row.vendor_id,
                customer_id=row.customer_id,
                grant_id=row.grant_id,
                family_id=row.family_id,
                reason="vendor",
            )
        else:
            store.revoke_token(tx.conn, row.id, utcnow())
            audit.token_revoked(
                tx.conn,
                vendor_id=row.vendor_id,
                customer_id=row.customer_id,
                grant_id=row.grant_id,
                family_id=row.family_id,
                whole_family=False,
                reason="vendor",
            )
        tx.commit()
        if row.customer_id is not None and (
            row.root_by_access is not None or row.root_by_refresh is not None
        ):
            # The command line's login of a customer-held customer ended:
            # this process forgets their root key, as at a log-out.
            self.server.vault.lock(row.customer_id)
