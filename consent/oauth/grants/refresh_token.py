"""The refresh token grant (RFC 6749 6), rotated with reuse detection.

Authlib neither rotates refresh tokens by default nor notices a replay
(OAUTH.md). Here every use issues a new refresh token, and a refresh token
used twice revokes its whole family: one of its two holders is an attacker
(RFC 9700 2.2.2, 4.14.2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from authlib.oauth2.rfc6749.grants import RefreshTokenGrant

from consent.oauth import first_party, rows, tokens
from consent.oauth.authlib_models import Token
from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.policy import parse_scopes, scope_string, within
from vrm.crypto import aead

if TYPE_CHECKING:
    from consent.oauth.server import Server


class RefreshGrant(RefreshTokenGrant):
    # "none": the public first-party client (consent/oauth/first_party.py);
    # Authlib takes it only from a client registered with it.
    TOKEN_ENDPOINT_AUTH_METHODS = [*TOKEN_AUTH_METHODS, "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    server: Server
    narrowed: str | None = None

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        tx = self.request.tx
        db = tx.conn
        vendor = self.request.client.vendor
        found = tokens.find_refresh(db, self.server.vault, refresh_token, vendor)
        if found is None:
            return None
        row = found.row
        active = None
        root = None
        if row.refreshed_at is None and row.revoked_at is None:
            # Everything that can refuse this request without it being a
            # replay comes before the token is used up, so a harmless client
            # mistake (asking for too wide a scope) does not cost the family.
            active = found.usable()
            if active is None or self._password_changed(found):
                return None
            if row.root_by_refresh is not None:
                # The first-party client's, for a customer-held root key: a
                # seal that does not open is an altered row, no token.
                try:
                    root = first_party.refresh_root(row, refresh_token)
                except aead.SealError:
                    return None
            self.narrowed = self._narrowed(active)
        if active is None or not tokens.consume_refresh(db, row):
            # Replay of a rotated (or revoked) refresh token: one of the two
            # holders is an attacker, so the whole family dies.
            tx.rollback()
            tokens.revoke_family(
                tx.conn,
                vendor_id=row.vendor_id,
                customer_id=row.customer_id,
                grant_id=row.grant_id,
                family_id=row.family_id,
                reason="reuse",
                reused="refresh_token",
            )
            tx.commit()
            return None
        # Not committed here: the use and the next token of the family are
        # one transaction (save_token commits). A concurrent second use
        # waits on the row and then finds it used.
        return Token(row, active, "refresh_token", root)

    def _password_changed(self, found: tokens.Found) -> bool:
        """A first-party login (no grant) from before the customer's last
        password change: ended by it (consent/oauth/first_party.py)."""
        row = found.row
        if row.grant_id is not None or row.customer_id is None:
            return False
        customer = rows.customer(self.request.tx.conn, row.customer_id)
        return customer is None or first_party.predates_password(customer, row.issued_at)

    def _narrowed(self, active: tokens.ActiveToken) -> str | None:
        """The narrower scope asked for (RFC 6749 6), or None to keep the
        refresh token's. Within what the refresh token may do by the policy's
        rule, so one field of a granted category is within it; scopes not
        ours are ignored (OIDC Core 3.1.2.1), and none of ours is no ask."""
        scope = self.request.payload.scope
        if not scope:  # most refreshes: nothing to parse
            return None
        asked, openid = parse_scopes(scope)
        if not asked and not openid:
            return None
        if within(asked, active.accesses) != asked or (openid and not active.openid):
            raise InvalidScopeError("the scope asked for is wider than the grant allows")
        return scope_string(asked, openid)

    def _validate_token_scope(self, token: Token) -> None:
        # Authlib's compares scope words as strings; _narrowed has decided.
        return None

    def issue_token(self, user: str, refresh_token: Token) -> dict[str, Any]:
        # The access token gets the narrowed scope; save_token keeps the
        # refresh token's own for the next refresh token.
        return self.generate_token(  # type: ignore[no-any-return]
            user=user,
            scope=self.narrowed or refresh_token.get_scope(),
            include_refresh_token=True,
        )

    def authenticate_user(self, refresh_token: Token) -> str | None:
        # The customer's id is all the token generator needs; their row is
        # not loaded (deleting a customer deletes their tokens anyway).
        return refresh_token.row.customer_id

    def revoke_old_credential(self, refresh_token: Token) -> None:
        # Already consumed in authenticate_refresh_token.
        return None
