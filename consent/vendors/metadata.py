"""Checks on client metadata (RFC 7591 section 2), shared by the operator's
``vrm vendors add`` and dynamic registration.

Messages name the field (``redirect_uris[1]``), never echo its value.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic.networks import validate_email

from consent.vendors.errors import InvalidClientMetadata, InvalidRedirectURI
from consent.vendors.models import AUTH_METHODS, GRANT_TYPES

# RFC 8252 section 7.3 and RFC 9700 section 2.6: plain http is allowed only
# for redirects that never leave the machine.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_NAME_LENGTH = 200  # Vendor.name
MAX_URI_LENGTH = 2000  # Vendor.logo_uri and friends
MAX_REDIRECT_URIS = 20
MAX_CONTACTS = 10
MAX_CONTACT_LENGTH = 320


@dataclass(frozen=True)
class ClientMetadata:
    name: str
    redirect_uris: list[str]
    logo_uri: str | None
    policy_uri: str | None
    notify_uri: str | None
    contacts: list[str]
    token_endpoint_auth_method: str
    grant_types: list[str]
    jwks: dict[str, Any] | None


def check_metadata(
    *,
    name: str,
    redirect_uris: Sequence[str],
    logo_uri: str | None,
    policy_uri: str | None,
    notify_uri: str | None,
    contacts: Sequence[str],
    token_endpoint_auth_method: str,
    grant_types: Sequence[str],
    jwks: Mapping[str, Any] | None,
) -> ClientMetadata:
    """Return the metadata cleaned (names stripped, duplicates dropped) or
    raise :class:`InvalidClientMetadata` naming the first bad field."""
    for field, value in (
        ("redirect_uris", redirect_uris),
        ("contacts", contacts),
        ("grant_types", grant_types),
    ):
        if isinstance(value, str):
            raise TypeError(f"{field} must be a sequence of strings, not one string")
    return ClientMetadata(
        name=_check_name(name),
        redirect_uris=_check_redirect_uris(redirect_uris),
        logo_uri=_check_optional_uri(logo_uri, "logo_uri"),
        policy_uri=_check_optional_uri(policy_uri, "policy_uri"),
        notify_uri=_check_optional_uri(notify_uri, "notify_uri"),
        contacts=_check_contacts(contacts),
        token_endpoint_auth_method=_check_auth_method(token_endpoint_auth_method),
        grant_types=_check_grant_types(grant_types),
        jwks=_check_jwks(jwks, token_endpoint_auth_method),
    )


def has_control_characters(value: str) -> bool:
    # Categories C* include the bidi overrides (Cf) that can make a name on
    # the consent screen read as another vendor's.
    return any(unicodedata.category(ch).startswith("C") for ch in value)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidClientMetadata("name must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidClientMetadata(f"name is longer than {MAX_NAME_LENGTH} characters")
    if has_control_characters(name):
        raise InvalidClientMetadata("name must not contain control characters")
    return name


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _check_redirect_uris(uris: Sequence[str]) -> list[str]:
    if not uris:
        raise InvalidRedirectURI("at least one redirect_uri is required")
    if len(uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectURI(f"at most {MAX_REDIRECT_URIS} redirect_uris are allowed")
    for n, uri in enumerate(uris):
        _check_uri(uri, f"redirect_uris[{n}]", redirect=True)
    return _unique(uris)


def _check_optional_uri(uri: str | None, field: str) -> str | None:
    if uri is None:
        return None
    _check_uri(uri, field, redirect=False)
    return uri


def _check_uri(uri: str, field: str, *, redirect: bool) -> None:
    error = InvalidRedirectURI if redirect else InvalidClientMetadata
    if len(uri) > MAX_URI_LENGTH:
        raise error(f"{field} is longer than {MAX_URI_LENGTH} characters")
    if any(ch.isspace() for ch in uri) or has_control_characters(uri):
        raise error(f"{field} must not contain spaces or control characters")
    parts = urlsplit(uri)
    if not parts.scheme:
        raise error(f"{field} must be an absolute URI")
    if parts.scheme not in ("https", "http"):
        raise error(f"{field} must use https (http only on a loopback host)")
    if not parts.hostname:
        raise error(f"{field} must be an absolute URI with a host")
    # RFC 6749 section 3.1.2: the redirection endpoint MUST NOT include a
    # fragment; "#" alone counts, which urlsplit would report as empty.
    if redirect and "#" in uri:
        raise error(f"{field} must not have a fragment")
    if parts.username is not None or parts.password is not None:
        raise error(f"{field} must not contain a user name or password")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise error(f"{field} has an invalid port") from None
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise error(f"{field} must use https (http only on a loopback host)")


def _check_contacts(contacts: Sequence[str]) -> list[str]:
    if len(contacts) > MAX_CONTACTS:
        raise InvalidClientMetadata(f"at most {MAX_CONTACTS} contacts are allowed")
    cleaned = []
    for n, contact in enumerate(contacts):
        contact = contact.strip()
        try:
            if len(contact) > MAX_CONTACT_LENGTH:
                raise ValueError(contact)
            validate_email(contact)
        except ValueError:
            raise InvalidClientMetadata(f"contacts[{n}] must be an email address") from None
        cleaned.append(contact)
    return _unique(cleaned)


def _check_auth_method(method: str) -> str:
    # "none" (a public client) is refused: vendors are confidential clients.
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    return method


def _check_grant_types(grant_types: Sequence[str]) -> list[str]:
    if not grant_types:
        raise InvalidClientMetadata("at least one grant_type is required")
    for n, grant_type in enumerate(grant_types):
        if grant_type not in GRANT_TYPES:
            raise InvalidClientMetadata(f"grant_types[{n}] must be one of {', '.join(GRANT_TYPES)}")
    return _unique(grant_types)


def _check_jwks(jwks: Mapping[str, Any] | None, method: str) -> dict[str, Any] | None:
    if method != "private_key_jwt":
        if jwks is not None:
            raise InvalidClientMetadata("jwks is only used with private_key_jwt")
        return None
    if jwks is None:
        raise InvalidClientMetadata("private_key_jwt needs jwks, the vendor's public keys")
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise InvalidClientMetadata("jwks must be a JWK Set with a non-empty keys list")
    try:
        key_set = KeySet.import_key_set({"keys": keys})
    except (JoseError, ValueError, KeyError, TypeError):
        raise InvalidClientMetadata("jwks holds a key that cannot be read") from None
    # import_key_set skips keys of an unknown kty (RFC 7517 section 5); at
    # registration the operator should hear about them instead.
    if len(key_set.keys) != len(keys):
        raise InvalidClientMetadata("jwks holds a key of an unsupported type")
    # Symmetric ("oct") keys count as private too: a shared key is a secret.
    if any(key.is_private for key in key_set.keys):
        raise InvalidClientMetadata("jwks must hold public keys only")
    return dict(jwks)
