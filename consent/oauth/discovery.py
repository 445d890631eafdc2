"""Discovery: the authorization server's metadata (RFC 8414, OIDC
Discovery 1.0 section 3) and its public signing keys (RFC 7517, for the ID
tokens of OIDC Core)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE
from fastapi import APIRouter
from starlette.responses import JSONResponse

from consent.oauth import keys
from consent.oauth.client_auth import ASSERTION_ALGS, TOKEN_AUTH_METHODS
from consent.policy import AUDITOR_SCOPES, CLAIMS, OPENID, VENDOR_SCOPES, all_scopes
from consent.scopes import PURPOSES
from vrm.deps import SettingsDep, VaultDep
from vrm.settings import Settings

router = APIRouter(include_in_schema=False)


def metadata(settings: Settings) -> dict[str, Any]:
    issuer = settings.issuer.rstrip("/")
    doc: dict[str, Any] = {
        "issuer": settings.issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "revocation_endpoint": f"{issuer}/oauth/revoke",
        "introspection_endpoint": f"{issuer}/oauth/introspect",
        "registration_endpoint": f"{issuer}/oauth/register",
        "device_authorization_endpoint": f"{issuer}/oauth/device_authorization",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            DEVICE_CODE_GRANT_TYPE,
        ],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "introspection_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGS,
        "jwks_uri": f"{issuer}/oauth/jwks",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "scopes_supported": [OPENID, *all_scopes(), *VENDOR_SCOPES, *AUDITOR_SCOPES],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [keys.ALG],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            *CLAIMS.values(),
        ],
        "authorization_response_iss_parameter_supported": True,
        # OIDC Discovery 3: request objects are refused (Core 6.1, 6.2).
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_details_types_supported": ["urn:vrm:consent:data-access"],
        "purposes_supported": sorted(PURPOSES),
    }
    AuthorizationServerMetadata(doc).validate()
    return doc


@router.get("/.well-known/oauth-authorization-server")
@router.get("/.well-known/openid-configuration")
def oauth_metadata(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(metadata(settings), headers={"Access-Control-Allow-Origin": "*"})


@router.get("/oauth/jwks")
def jwks(vault: VaultDep) -> JSONResponse:
    # Public keys only, nothing personal: any cache may keep them for a few
    # minutes, unlike the rest of /oauth/ (no-store by default, vrm/headers.py).
    return JSONResponse(
        keys.jwks(vault),
        headers={"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=300"},
    )
