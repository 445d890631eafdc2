"""OpenID Connect on the authorization code grant (OIDC Core 3.1): the
ID token, ``max_age``, and the refusal of request objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oidc.core import UserInfo
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import ECKey

from consent.oauth import keys, store, tokens
from consent.oauth.requests import Request
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow

if TYPE_CHECKING:
    from consent.oauth.authlib_models import Client
    from consent.oauth.server import Server


def request_object_error(data: Mapping[str, str]) -> OAuth2Error | None:
    """OIDC Core 6.1, 6.2: request objects are not supported, and saying so
    beats acting on the plain parameters beside an ignored one."""
    if "request" in data:
        return RequestNotSupportedError("request objects are not supported")
    if "request_uri" in data:
        return RequestURINotSupportedError("request_uri is not supported")
    return None


def max_age(raw: str | None) -> int | None:
    """OIDC Core 3.1.2.1: a non-negative number of seconds."""
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise InvalidRequestError("max_age must be a number of seconds")
    return int(raw)


class OpenIDConnect(OpenIDCode):
    """ID tokens for ``openid`` requests: ES256, key in the JWKS, and a
    pairwise ``sub`` (OIDC Core 8.1) so two vendors cannot link a customer.
    The ID token carries no profile claims; userinfo gives what was granted."""

    def __init__(self, server: Server) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: Request) -> bool:
        return store.nonce_seen(request.tx.conn, request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: Client) -> ECKey:
        return keys.signing_key(self.server.vault)

    def get_client_algorithm(self, client: Client) -> str:
        return keys.ALG

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": keys.ALG, "typ": "JWT", "kid": keys.signing_key(self.server.vault).kid or ""}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(utcnow().timestamp())
        return {
            "iss": self.server.settings.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + self.server.settings.access_token_ttl_seconds,
        }

    def get_compatible_claims(self, request: Request) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_compatible_claims(request)
        claims["sub"] = tokens.pairwise_subject(
            self.server.vault, request.client.vendor.id, request.user.id
        )
        return claims

    def generate_user_info(self, user: Customer, scope: str) -> UserInfo:
        return UserInfo()
