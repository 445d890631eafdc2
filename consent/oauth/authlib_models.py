"""Our rows as Authlib's grants and endpoints want to see them: a vendor as
a ``ClientMixin``, an authorization code, a token as a ``TokenMixin``
(Authlib's rfc6749/models.py), and the token lookup the revocation and
introspection endpoints share."""

from __future__ import annotations

from typing import TYPE_CHECKING

from authlib.oauth2.rfc6749 import ClientMixin, InvalidRequestError, TokenMixin

from consent.grants import service as grants
from consent.grants.models import Grant
from consent.oauth import tokens
from consent.oauth.client_auth import SECRET_METHODS
from consent.oauth.models import AuthorizationCode
from consent.oauth.requests import Request
from consent.oauth.store import TokenRow
from consent.policy import parse_scopes, scope_string, within
from consent.vendors import service as vendors
from consent.vendors.models import Vendor
from vrm.dbtypes import utcnow
from vrm.keys.service import Vault

if TYPE_CHECKING:
    from consent.oauth.server import Server


class Client(ClientMixin):
    def __init__(self, vendor: Vendor, vault: Vault) -> None:
        self.vendor = vendor
        self.vault = vault

    def get_client_id(self) -> str:
        return self.vendor.id

    def get_default_redirect_uri(self) -> str | None:
        # With several registered URIs the client must say which one.
        uris = self.vendor.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Exact string matching (RFC 9700 2.1, 4.1.3).
        return redirect_uri in self.vendor.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return vendors.check_secret(self.vault, self.vendor, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        registered = self.vendor.token_endpoint_auth_method
        if registered in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == registered

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.check_grant_type("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.vendor.grant_types


class Code:
    """An authorization code row, as Authlib's grant wants to see it."""

    def __init__(self, row: AuthorizationCode, grant: Grant) -> None:
        self.row = row
        self.grant = grant
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.row.redirect_uri or None

    def get_scope(self) -> str:
        # What the grant still allows: it may have been narrowed since.
        accesses, openid = parse_scopes(self.row.scope)
        allowed = within(accesses, grants.accesses_of(self.grant))
        return scope_string(allowed, openid and self.grant.openid)

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


class Token(TokenMixin):
    """A token row plus what it may do right now (None: not usable)."""

    def __init__(
        self,
        row: TokenRow,
        active: tokens.ActiveToken | None,
        kind: str,
        root: bytes | None = None,
    ) -> None:
        self.row = row
        self.active = active
        self.kind = kind
        # A refresh token's customer-held root key, once opened
        # (consent/oauth/first_party.py): for the next token row.
        self.root = root

    def check_client(self, client: Client) -> bool:
        return self.row.vendor_id == client.vendor.id

    def get_scope(self) -> str:
        return self.active.scope if self.active is not None else ""

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        end = self.row.expires_at if self.kind == "access_token" else self.row.refresh_expires_at
        return end is None or end <= utcnow()

    def is_revoked(self) -> bool:
        return self.active is None

    def get_user(self) -> str | None:
        return self.row.customer_id

    def get_client(self) -> str:
        return self.row.vendor_id


class TokenLookup:
    """How the revocation (RFC 7009) and introspection (RFC 7662)
    endpoints find the token they are sent."""

    server: Server

    def check_params(self, request: Request, client: Client) -> None:
        # The hint is only a hint: a server that does not find the token
        # under it searches the other types (RFC 7662 2.1, RFC 7009 2.1),
        # and find_token searches them all anyway. Authlib refused an
        # unknown hint with unsupported_token_type and 401, the status of
        # invalid_client; RFC 7009 2.2.1's unsupported_token_type is for a
        # type the server cannot revoke, and it revokes both of its types.
        if "token" not in request.form:
            raise InvalidRequestError("send the token to look up")

    def find_token(self, request: Request, client: Client) -> Token | None:
        """The token sent (searched under every type, whatever the hint),
        in the request's transaction; Authlib's ``query_token`` is given
        no request."""
        self.check_params(request, client)
        found = tokens.find_any(request.tx.conn, self.server.vault, request.form["token"])
        if found is None:
            return None
        return Token(found.row, found.usable(), found.kind)
