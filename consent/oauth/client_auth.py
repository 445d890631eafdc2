"""How vendors authenticate at the token, revocation and introspection
endpoints (RFC 6749 2.3, OIDC Core 9).

``client_secret_basic`` and ``client_secret_post`` are Authlib's own; the
secret is checked against its keyed hash by ``Client.check_client_secret``.
``private_key_jwt`` (RFC 7523 2.2) is :class:`PrivateKeyJWT`: asymmetric
keys, as RFC 9700 2.5 prefers, and each assertion usable once.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy.exc import IntegrityError

from consent.oauth import store
from consent.oauth.errors import ascii_only
from consent.oauth.requests import Request
from vrm import strictjson
from vrm.dbtypes import utcnow

if TYPE_CHECKING:
    from consent.oauth.authlib_models import Client
    from consent.oauth.server import Server

SECRET_METHODS = ("client_secret_basic", "client_secret_post")
TOKEN_AUTH_METHODS = [*SECRET_METHODS, "private_key_jwt"]
# Algorithms a private_key_jwt assertion may be signed with (asymmetric only).
ASSERTION_ALGS = ["ES256", "ES384", "EdDSA", "PS256", "RS256"]
# Longest a private_key_jwt assertion may live: bounds the jti store.
ASSERTION_MAX_SECONDS = 300


def _b64url(part: str) -> bytes:
    """A base64url segment of a compact JWS (RFC 7515 2: no padding)."""
    return base64.urlsafe_b64decode(part.encode("ascii") + b"=" * (-len(part) % 4))


class PrivateKeyJWT(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 2.2, OIDC Core 9): the vendor signs a
    short-lived assertion with a key whose public half it registered. Each
    assertion works once; the audience must be this server."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: Server) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        issuer = self.server.settings.issuer.rstrip("/")
        return [
            self.server.settings.issuer,
            *(f"{issuer}/oauth/{name}" for name in ("token", "introspect", "revoke")),
        ]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if not client.vendor.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.vendor.jwks)  # type: ignore[arg-type]

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        # Authlib and joserfc read the header and payload with json.loads,
        # which 1000 nested arrays drive into a RecursionError (a 500, with
        # no client needed). Both go through the one parser for outside
        # JSON first, depth and numbers bounded; what it refuses is a bad
        # assertion. Once they pass, joserfc's own parse is harmless.
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a compact JWS")
            header, claims = (strictjson.loads(_b64url(part)) for part in parts[:2])
        except ValueError:  # strictjson.Rejected, binascii.Error, non-ASCII
            raise InvalidClientError(description="Invalid JWT assertion.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidClientError(description="Invalid JWT assertion.")
        return header, claims

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> jwt.Claims:
        # As Authlib's, but only asymmetric algorithms: never HS256 keyed
        # with something public, never "none".
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except JoseError as exc:
            raise InvalidClientError(description=ascii_only(exc.description or exc.error)) from None
        self.verify_claims(token.claims)
        return token.claims

    def __call__(self, query_client: Any, request: Request) -> Client | None:
        client: Client | None = super().__call__(query_client, request)
        if client is not None:
            # Authlib's validate_jti is given no request, so no transaction
            # to remember the jti in: it checks the claims, and the jti is
            # spent here, once the assertion is proven (its claims read
            # again: they passed their signature check).
            _, claims = self.extract_assertion(request.form["client_assertion"])
            if not self._first_use(request, claims):
                raise InvalidClientError(description="JWT ID is used before.")
        return client

    def validate_jti(self, claims: jwt.Claims, jti: Any) -> bool:
        exp = claims.get("exp")
        if not isinstance(jti, str) or not isinstance(exp, int):
            return False
        if exp - int(utcnow().timestamp()) > ASSERTION_MAX_SECONDS:
            raise InvalidClientError(
                description=f"client assertions may live at most {ASSERTION_MAX_SECONDS} s"
            )
        return True

    def _first_use(self, request: Request, claims: dict[str, Any]) -> bool:
        # RFC 7523 3 item 7: the jti is remembered until the assertion
        # expires, so a replayed assertion is refused.
        tx = request.tx
        now = utcnow()
        store.purge_assertions(tx.conn, now)
        try:
            store.insert_assertion(
                tx.conn,
                vendor_id=str(claims["sub"]),
                jti_hash=hashlib.sha256(claims["jti"].encode()).digest(),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
            tx.commit()
        except IntegrityError:
            tx.rollback()
            return False
        return True
