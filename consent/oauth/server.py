"""Authlib's authorization server, fitted to Starlette and to our rules.

Authlib is synchronous and has no Starlette integration. Routes read the
request body in async code, then call the server in a worker thread (the
pages) or in the group commit (the vendor endpoints), the request carrying
the transaction (``Request.tx``, vrm/storage/transaction.py) every callback
runs in. Authlib's ``query_client`` is given a client id only, so the
entries that look a client up (:meth:`Server.authenticate_client`,
:meth:`Server.get_authorization_grant`, the code grant's
``validate_authorization_request``) look it up in the request's
transaction instead (:meth:`Server.client_of`). Where Authlib's defaults fall short of
OAuth 2.1 and RFC 9700 (see the shared OAUTH.md) the pieces registered here
tighten them, one module per concern:

- grants/authorization_code.py: codes are consumed atomically, and a second
  use revokes what the first one issued;
- grants/pkce.py: PKCE is required of every client, S256 only;
- grants/oidc.py: ID tokens with a pairwise ``sub``;
- grants/refresh_token.py: refresh tokens rotate on every use, and a
  replayed one revokes its family;
- grants/client_credentials.py: vendor-wide scopes only;
- grants/device_code.py: the device authorization grant (RFC 8628), for
  the store's own client only (first_party.py);
- client_auth.py: client secrets and RFC 7523 ``private_key_jwt``;
- revocation.py (RFC 7009) and introspection.py (RFC 7662);
- requests.py: parameters come from the query (GET) or the form (POST),
  never both, and empty values count as absent.

Only the code, refresh, client-credentials and device grants exist. What stays here
is the wiring and the tokens every grant issues.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import ClientAuthentication, UnsupportedResponseTypeError
from authlib.oauth2.rfc6749.authorization_server import _create_grant
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from starlette.responses import Response

from consent.audit import events as audit
from consent.grants.models import Grant
from consent.oauth import first_party, rows, store, tokens
from consent.oauth.answers import JSONAnswer
from consent.oauth.authlib_models import Client, Code, Token
from consent.oauth.client_auth import PrivateKeyJWT
from consent.oauth.details import granted_details
from consent.oauth.grants.authorization_code import CodeGrant, family_of
from consent.oauth.grants.client_credentials import VendorCredentialsGrant
from consent.oauth.grants.device_code import DeviceEndpoint, DeviceGrant
from consent.oauth.grants.oidc import OpenIDConnect, request_object_error
from consent.oauth.grants.pkce import S256Challenge
from consent.oauth.grants.refresh_token import RefreshGrant
from consent.oauth.introspection import Introspection
from consent.oauth.requests import Request
from consent.oauth.revocation import Revocation
from consent.policy import parse_scopes
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow
from vrm.keys.service import Vault
from vrm.settings import Settings
from vrm.storage.transaction import Transaction

# Authlib logs whole token dicts at DEBUG; never let them reach a log.
logging.getLogger("authlib").setLevel(logging.INFO)


def _row_id(now: datetime) -> str:
    """A token row's id, which its tokens carry (consent/oauth/tokens.py):
    32 hex digits, the time in microseconds first, so that new rows go to
    the end of the id index (and of the grant-and-family index, for a
    client-credentials token, whose family is its own id) rather than to a
    random page of it; every random page is one more page a commit writes. It says when the token
    was issued, which its holder knows anyway, and nothing else."""
    return f"{int(now.timestamp() * 1_000_000):014x}{secrets.token_hex(9)}"


class Server(AuthorizationServer):
    def __init__(self, settings: Settings, vault: Vault) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.vault = vault
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [S256Challenge(required=True), OpenIDConnect(self)])
        self.register_grant(RefreshGrant)
        self.register_grant(VendorCredentialsGrant)
        self.register_grant(DeviceGrant)
        self.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT(self))
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        self.register_endpoint(DeviceEndpoint)

    # Authlib's hooks ---------------------------------------------------
    def client_of(self, tx: Transaction, client_id: str) -> Client | None:
        """The vendor with this client id, as Authlib's client, unless it
        is disabled (Authlib's ``query_client``, in a transaction)."""
        vendor = rows.vendor(tx.conn, client_id)
        if vendor is None or vendor.disabled_at is not None:
            return None
        return Client(vendor, self.vault)

    def query_client(self, client_id: str) -> Client | None:
        # Every entry of Authlib's that calls this is overridden to call
        # client_of with the request's transaction instead.
        raise NotImplementedError("look clients up with client_of, in the request's transaction")

    def authenticate_client(
        self, request: Request, methods: list[str], endpoint: str = "token"
    ) -> Client:
        # Authlib's, with the methods registered here, each handed a client
        # lookup in this request's transaction.
        auth = ClientAuthentication(partial(self.client_of, request.tx))
        auth._methods = self._client_auth._methods
        client: Client = auth(request, methods, endpoint)
        return client

    def get_authorization_grant(self, request: Request) -> Any:
        for grant_cls, extensions in self._authorization_grants:
            if grant_cls.check_authorization_endpoint(request):
                return _create_grant(grant_cls, extensions, request, self)
        # A JAR client (RFC 9101 5, openid-client) sends response_type
        # only inside the request object: name what is not supported.
        refused = request_object_error(request.payload.data)
        # Redirected only to a URI registered for the client (RFC 6749
        # 4.1.2.1), as Authlib's.
        redirect_uri = None
        client_id = request.payload.client_id
        client = self.client_of(request.tx, client_id) if client_id else None
        if client is not None:
            asked = request.payload.redirect_uri
            if asked:
                redirect_uri = asked if client.check_redirect_uri(asked) else None
            else:
                redirect_uri = client.get_default_redirect_uri()
        if refused is None:
            response_type = request.payload.response_type
            refused = UnsupportedResponseTypeError(
                f"The response type '{response_type}' is not supported by the server.",
                response_type,
            )
        refused.redirect_uri = redirect_uri
        raise refused

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: Customer | str | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        # The id of the row save_token writes: the tokens carry it.
        token_id = _row_id(utcnow())
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": tokens.new_access_token(token_id),
            "expires_in": expires_in or self.settings.access_token_ttl_seconds,
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = tokens.new_refresh_token(token_id)
        if scope:
            token["scope"] = scope
        return token

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        now = utcnow()
        token_id = tokens.id_of(token["access_token"])
        if token_id is None:  # pragma: no cover - _generate_token made it
            raise RuntimeError("an access token without its row id")
        grant_type = request.payload.grant_type
        grant: Grant | None = None
        customer_id: str | None = None
        refresh_scope: str | None = None
        # The first-party client's, for a customer-held root key: what the
        # refresh token or the device code opened, sealed anew below.
        root: bytes | None = None
        if grant_type == "authorization_code":
            code: Code = request.authorization_code
            grant = code.grant
            customer_id = code.row.customer_id
            family = family_of(code.row.code_hash)
        elif grant_type == "refresh_token":
            old: Token = request.refresh_token
            grant = old.active.grant if old.active else None
            customer_id = old.row.customer_id
            family = old.row.family_id
            root = old.root
            # After a narrowed refresh the next refresh token may still do
            # what the last one could (as the grant allows), not only what
            # this access token may (RFC 6749 6).
            if old.get_scope() != token.get("scope", ""):
                refresh_scope = old.get_scope()
        elif grant_type == DEVICE_CODE_GRANT_TYPE:
            # The first-party client's: the customer's, under no consent grant.
            customer_id = request.user.id
            family = family_of(request.credential.row.device_hash)
            root = request.credential.root
        else:
            family = token_id  # a family of one
        access_end = now + timedelta(seconds=int(token["expires_in"]))
        refresh_end = None
        if grant is not None:
            # No token outlives its grant.
            access_end = min(access_end, grant.expires_at)
            refresh_end = min(
                now + timedelta(seconds=self.settings.refresh_idle_seconds), grant.expires_at
            )
            token["expires_in"] = max(1, int((access_end - now).total_seconds()))
            token["grant_id"] = grant.id
            if grant.authorization_details is not None:
                accesses, _ = parse_scopes(token.get("scope"))
                token["authorization_details"] = granted_details(accesses, grant)
        elif customer_id is not None:
            # The first-party client's (no consent grant): idle expiry only.
            refresh_end = now + timedelta(seconds=self.settings.refresh_idle_seconds)
        refresh = token.get("refresh_token")
        row = {
            "id": token_id,
            "access_hash": self.vault.token_hash(token["access_token"]),
            "refresh_hash": self.vault.token_hash(refresh) if refresh else None,
            "family_id": family,
            "vendor_id": request.client.vendor.id,
            "grant_id": grant.id if grant else None,
            "customer_id": customer_id,
            "scope": token.get("scope", ""),
            "issued_at": now,
            "expires_at": access_end,
            "refresh_expires_at": refresh_end if refresh else None,
            "refresh_scope": refresh_scope if refresh else None,
            **(
                first_party.NO_SEALS
                if root is None or customer_id is None
                else first_party.token_seals(token, token_id, customer_id, root)
            ),
        }
        store.insert_token(request.tx.conn, **row)
        audit.token_issued(request.tx.conn, row, grant_type)
        request.tx.commit()

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        if isinstance(body, dict):
            return JSONAnswer(body, status, headers)
        return Response(body or b"", status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def get_error_uri(self, request: Request, error: OAuth2Error) -> None:
        return None
