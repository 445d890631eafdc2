"""Client metadata as RFC 7591 section 2 names it: a registration or update
body read into the vendor registry's :class:`ClientMetadata` (whose rules
live in consent/vendors/metadata.py), and a vendor written back out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc7591 import InvalidClientMetadataError

from consent.oauth.errors import ascii_only
from consent.oauth.first_party import is_first_party
from consent.scopes import FIRST_PARTY_SCOPES_SET
from consent.vendors.errors import InvalidClientMetadata
from consent.vendors.metadata import ClientMetadata, check_metadata
from consent.vendors.models import Vendor
from vrm.settings import Settings

REGISTER_PATH = "/oauth/register"
DEFAULT_GRANT_TYPES = ("authorization_code",)  # RFC 7591 section 2
DEFAULT_AUTH_METHOD = "client_secret_basic"
_STRINGS = ("client_name", "logo_uri", "policy_uri", "notify_uri", "token_endpoint_auth_method")
_STRING_LISTS = ("redirect_uris", "contacts", "grant_types", "response_types")


def refused(exc: InvalidClientMetadata) -> OAuth2Error:
    """invalid_redirect_uri or invalid_client_metadata (RFC 7591 3.2.2)."""
    return OAuth2Error(ascii_only(str(exc)), error=exc.oauth_error)


def client_metadata(data: dict[str, Any]) -> ClientMetadata:
    """Check a registration or update body (RFC 7591 section 2) and return
    the metadata to store. A member sent as null counts as left out."""
    if data.get("jwks_uri") is not None:
        raise InvalidClientMetadataError("jwks_uri is not supported: send the public keys as jwks")
    for member in _STRINGS:
        if data.get(member) is not None and not isinstance(data[member], str):
            raise InvalidClientMetadataError(f"{member} must be a string")
    for member in _STRING_LISTS:
        value = data.get(member)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise InvalidClientMetadataError(f"{member} must be an array of strings")
    if data.get("jwks") is not None and not isinstance(data["jwks"], dict):
        raise InvalidClientMetadataError("jwks must be a JWK Set (a JSON object)")
    name: str | None = data.get("client_name")
    if name is None:
        raise InvalidClientMetadataError("client_name is required: customers see it to consent")
    scope = data.get("scope")
    if is_first_party(
        data.get("client_id") if isinstance(data.get("client_id"), str) else None, name
    ):
        raise InvalidClientMetadataError("that client is the store's own: choose another name")
    if isinstance(scope, str) and not FIRST_PARTY_SCOPES_SET.isdisjoint(scope.split()):
        raise InvalidClientMetadataError("account is the store's own client's scope")
    grant_types: Sequence[str] | None = data.get("grant_types")
    if grant_types is None:
        grant_types = DEFAULT_GRANT_TYPES
    method: str | None = data.get("token_endpoint_auth_method")
    if method is None:
        method = DEFAULT_AUTH_METHOD
    response_types = data.get("response_types")
    if response_types is not None:
        if set(response_types) != {"code"}:
            raise InvalidClientMetadataError("response_types may only hold code")
        if "authorization_code" not in grant_types:
            # RFC 7591 section 2.1: the two must agree.
            raise InvalidClientMetadataError(
                "response_types code needs the authorization_code grant type"
            )
    try:
        return check_metadata(
            name=name,
            redirect_uris=data.get("redirect_uris") or [],
            logo_uri=data.get("logo_uri"),
            policy_uri=data.get("policy_uri"),
            notify_uri=data.get("notify_uri"),
            contacts=data.get("contacts") or [],
            token_endpoint_auth_method=method,
            grant_types=grant_types,
            jwks=data.get("jwks"),
        )
    except InvalidClientMetadata as exc:
        raise refused(exc) from None


def public_metadata(metadata: ClientMetadata | Vendor) -> dict[str, Any]:
    """The registered metadata as RFC 7591 names it; empty members left out."""
    body: dict[str, Any] = {
        "client_name": metadata.name,
        "redirect_uris": metadata.redirect_uris,
        "token_endpoint_auth_method": metadata.token_endpoint_auth_method,
        "grant_types": metadata.grant_types,
        "response_types": ["code"] if "authorization_code" in metadata.grant_types else [],
    }
    optional = {
        "logo_uri": metadata.logo_uri,
        "policy_uri": metadata.policy_uri,
        "contacts": metadata.contacts,
        "notify_uri": metadata.notify_uri,
        "jwks": metadata.jwks,
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


def client_information(
    settings: Settings, vendor: Vendor, registration_token: str
) -> dict[str, Any]:
    """RFC 7591 section 3.2.1 and RFC 7592 section 3, without the client
    secret, which only the registration response carries."""
    body = {
        "client_id": vendor.id,
        "client_id_issued_at": int(vendor.created_at.timestamp()),
        **public_metadata(vendor),
        "registration_access_token": registration_token,
        "registration_client_uri": f"{settings.issuer.rstrip('/')}{REGISTER_PATH}/{vendor.id}",
    }
    if vendor.secret_hash is not None:
        body["client_secret_expires_at"] = 0  # secrets do not expire
    return body
