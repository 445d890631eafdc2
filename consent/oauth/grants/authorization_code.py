"""The authorization code grant (RFC 6749 4.1), as OAuth 2.1 and RFC 9700
want it.

- The request is checked strictly: every parameter once (RFC 6749 3.1), our
  scopes, ``purpose`` and ``authorization_details`` (RFC 9396), no request
  objects (OIDC Core 6), and a fresh PKCE challenge (RFC 9700 2.1.1).
- The code carries what was asked for and granted, never the rest of a
  wider grant (RFC 9700 2.3).
- Codes are consumed atomically; a second use is refused and revokes what
  the first one issued (RFC 9700 4.2.4, OAuth 2.1 4.1.3). Authlib leaves
  single use to ``delete_authorization_code`` and detects no reuse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.hooks import hooked

from consent.grants import service as grants
from consent.oauth import rows, store, tokens
from consent.oauth.authlib_models import Client, Code
from consent.oauth.client_auth import TOKEN_AUTH_METHODS
from consent.oauth.details import InvalidAuthorizationDetailsError, read_details
from consent.oauth.errors import ascii_only, quoted
from consent.oauth.grants.oidc import max_age, request_object_error
from consent.oauth.requests import Request
from consent.policy import ScopeError, scope_string, within
from consent.scopes import DetailsError, data_request
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow

if TYPE_CHECKING:
    from consent.oauth.server import Server


def family_of(code_hash: bytes) -> str:
    """Tokens issued from one code share a family id derived from it, so a
    reused code can find and revoke them."""
    return code_hash[:16].hex()


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43

    server: Server

    def validate_authorization_request(self) -> str:
        """Authlib's (RFC 6749 4.1.1), the client looked up in the
        request's transaction: Authlib's asks ``server.query_client``, which
        is given no request (consent/oauth/server.py)."""
        request: Request = self.request
        client_id = request.payload.client_id
        if client_id is None:
            raise InvalidClientError(description="Missing 'client_id' parameter.")
        client = self.server.client_of(request.tx, client_id)
        if client is None:
            raise InvalidClientError(description="The client does not exist on this server.")
        redirect_uri: str = self.validate_authorization_redirect_uri(request, client)
        response_type = request.payload.response_type
        if not client.check_response_type(response_type):
            raise UnauthorizedClientError(
                f"The client is not authorized to use 'response_type={response_type}'",
                redirect_uri=redirect_uri,
            )
        request.client = client
        try:
            self.validate_authorization_request_payload(redirect_uri)
        except OAuth2Error as error:
            error.redirect_uri = redirect_uri
            raise
        return redirect_uri

    @hooked  # type: ignore[untyped-decorator]
    def validate_authorization_request_payload(self, redirect_uri: str) -> None:
        # Hooked as Authlib's: PKCE and OIDC check the request after it.
        self.validate_requested_scope()
        self.request.scope = self.request.client.get_allowed_scope(self.request.payload.scope)

    def validate_requested_scope(self) -> None:
        """Our scopes, purpose and authorization_details, checked strictly."""
        request: Request = self.request
        data = request.payload.data
        details_raw = data.get("authorization_details")
        if request.payload.repeated is not None:
            # RFC 6749 3.1, for every parameter (Authlib checks five).
            name = quoted(request.payload.repeated)
            raise InvalidRequestError(f"{name} is sent more than once (RFC 6749 3.1)")
        refused = request_object_error(data)
        if refused is not None:
            raise refused
        request.max_age = max_age(data.get("max_age"))
        details = read_details(details_raw)
        try:
            request.data_request = data_request(
                scope=data.get("scope"), purpose=data.get("purpose"), authorization_details=details
            )
        except DetailsError as exc:
            raise InvalidAuthorizationDetailsError(ascii_only(str(exc))) from None
        except ScopeError as exc:
            raise InvalidScopeError(ascii_only(str(exc))) from None
        challenge = data.get("code_challenge")
        if challenge and store.challenge_seen(request.tx.conn, request.client.vendor.id, challenge):
            # RFC 9700 2.1.1: a constant challenge is no protection at all.
            raise InvalidRequestError("code_challenge was used before: make one per request")

    def save_authorization_code(self, code: str, request: Request) -> None:
        decision = request.decision
        if decision is None:  # pragma: no cover - the routes always decide first
            raise RuntimeError("no consent decision for this authorization")
        grant = decision.grant
        data = request.payload.data
        now = utcnow()
        asked = request.data_request
        if asked is None:  # pragma: no cover - set by validate_requested_scope
            raise RuntimeError("an authorization without its validated request")
        # RFC 9700 2.3: the code carries what was asked for and granted,
        # never the rest of a wider grant that happens to cover the request.
        # Authlib re-runs validation (and resets request.scope) before this
        # call, so the customer's choice comes from request.decision.
        accesses = within(asked.accesses, grants.accesses_of(grant))
        tx = request.tx
        store.insert_code(
            tx.conn,
            code_hash=self.server.vault.token_hash(code),
            vendor_id=request.client.vendor.id,
            customer_id=decision.customer.id,
            grant_id=grant.id,
            redirect_uri=data.get("redirect_uri", ""),
            scope=scope_string(accesses, asked.openid and grant.openid),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            nonce=data.get("nonce"),
            auth_time=decision.auth_time,
            expires_at=now + timedelta(seconds=self.server.settings.code_ttl_seconds),
        )
        # Used and expired codes stay as tombstones (reuse, nonce and
        # challenge replay are caught while they last) until vrm/purge.py
        # takes them, VRM_RETAIN_SPENT_CODES_SECONDS after they expire.
        tx.commit()

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        tx = self.request.tx
        db = tx.conn
        code_hash = self.server.vault.token_hash(code)
        row = store.code(db, code_hash)
        if row is None or row.vendor_id != client.vendor.id:
            return None
        # Consume atomically: exactly one exchange wins.
        if not store.consume_code(db, code_hash, utcnow()):
            # Second use: deny, and revoke whatever the first use issued
            # (RFC 9700 4.2.4, OAuth 2.1 4.1.3).
            tokens.revoke_family(
                db,
                vendor_id=row.vendor_id,
                customer_id=row.customer_id,
                grant_id=row.grant_id,
                family_id=family_of(code_hash),
                reason="reuse",
                reused="authorization_code",
            )
            tx.commit()
            return None
        tx.commit()
        if row.expires_at <= utcnow():
            return None
        grant = rows.grant(tx.conn, row.grant_id)
        if grant is None or not grants.is_active(grant):
            return None
        return Code(row, grant)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        # The used row stays as a tombstone until it expires, so reuse is seen.
        return None

    def authenticate_user(self, authorization_code: Code) -> Customer | None:
        return rows.customer(self.request.tx.conn, authorization_code.row.customer_id)
