"""Vendor registry use cases: session and vault first, options by keyword;
no HTTP in here.

Client secrets and initial access tokens are random strings returned once and
kept only as keyed hashes (``Vault.token_hash``): a copy of the database is
not enough to check a guess against them, let alone to recover them.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from consent.vendors.metadata import MAX_NAME_LENGTH, check_metadata, has_control_characters
from consent.vendors.models import GRANT_TYPES, InitialAccessToken, Vendor
from vrm.dbtypes import utcnow
from vrm.errors import Conflict, NotFound, ValidationFailed
from vrm.keys.service import Vault

CLIENT_ID_PREFIX = "vnd_"
UNKNOWN_VENDOR = "No vendor has this client id."
PRIVATE_KEY_JWT = "private_key_jwt"


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


def register(
    session: Session,
    vault: Vault,
    *,
    name: str,
    redirect_uris: Sequence[str],
    logo_uri: str | None = None,
    policy_uri: str | None = None,
    contacts: Sequence[str] = (),
    notify_uri: str | None = None,
    token_endpoint_auth_method: str = "client_secret_basic",  # noqa: S107 - a method name
    jwks: Mapping[str, Any] | None = None,
    grant_types: Sequence[str] = GRANT_TYPES,
    registered_by: Literal["operator", "dynamic"] = "operator",
) -> tuple[Vendor, str | None]:
    """Register a vendor; returns it and its client secret, which exists only
    in this return value (None for private_key_jwt, which has no secret).

    Raises :class:`~consent.vendors.errors.InvalidClientMetadata` (or its
    :class:`~consent.vendors.errors.InvalidRedirectURI`) before writing
    anything if the metadata is not acceptable.
    """
    if registered_by not in ("operator", "dynamic"):
        raise ValueError(f"unknown registered_by: {registered_by!r}")
    metadata = check_metadata(
        name=name,
        redirect_uris=redirect_uris,
        logo_uri=logo_uri,
        policy_uri=policy_uri,
        notify_uri=notify_uri,
        contacts=contacts,
        token_endpoint_auth_method=token_endpoint_auth_method,
        grant_types=grant_types,
        jwks=jwks,
    )
    secret = None if metadata.token_endpoint_auth_method == PRIVATE_KEY_JWT else _new_secret()
    vendor = Vendor(
        # The client id is always the server's choice (RFC 7591 section 3.2.1).
        id=CLIENT_ID_PREFIX + secrets.token_urlsafe(16),
        name=metadata.name,
        secret_hash=None if secret is None else vault.token_hash(secret),
        redirect_uris=metadata.redirect_uris,
        logo_uri=metadata.logo_uri,
        policy_uri=metadata.policy_uri,
        notify_uri=metadata.notify_uri,
        contacts=metadata.contacts,
        token_endpoint_auth_method=metadata.token_endpoint_auth_method,
        grant_types=metadata.grant_types,
        jwks=metadata.jwks,
        registered_by=registered_by,
        created_at=utcnow(),
    )
    session.add(vendor)
    session.commit()
    session.refresh(vendor)
    return vendor, secret


def get(session: Session, client_id: str) -> Vendor | None:
    """The vendor, disabled or not: callers check ``disabled_at``."""
    return session.get(Vendor, client_id)


def list_vendors(session: Session) -> list[Vendor]:
    return list(session.exec(select(Vendor).order_by(col(Vendor.created_at), col(Vendor.id))).all())


def _existing(session: Session, client_id: str) -> Vendor:
    vendor = session.get(Vendor, client_id)
    if vendor is None:
        raise NotFound(UNKNOWN_VENDOR)
    return vendor


def disable(session: Session, client_id: str) -> Vendor:
    """Mark the vendor disabled; it can no longer authenticate. Idempotent:
    a second call keeps the first time."""
    vendor = _existing(session, client_id)
    if vendor.disabled_at is None:
        vendor.disabled_at = utcnow()
        session.add(vendor)
        session.commit()
        session.refresh(vendor)
    return vendor


def check_secret(vault: Vault, vendor: Vendor, secret: str) -> bool:
    """True if ``secret`` is the vendor's current client secret and the
    vendor is enabled. Compares keyed hashes in constant time."""
    if vendor.secret_hash is None or vendor.disabled_at is not None:
        return False
    return hmac.compare_digest(vault.token_hash(secret), vendor.secret_hash)


def rotate_secret(session: Session, vault: Vault, client_id: str) -> str:
    """Replace the client secret; the old one stops working at once. Returns
    the new secret, which exists only in this return value."""
    vendor = _existing(session, client_id)
    if vendor.token_endpoint_auth_method == PRIVATE_KEY_JWT:
        raise Conflict("This vendor authenticates with private_key_jwt and has no secret.")
    secret = _new_secret()
    vendor.secret_hash = vault.token_hash(secret)
    session.add(vendor)
    session.commit()
    return secret


# -- initial access tokens (RFC 7591 section 3) ------------------------------


def issue_initial_access_token(
    session: Session, vault: Vault, *, label: str, ttl: timedelta | None
) -> str:
    """Issue a token that lets its holder register one or more vendors
    dynamically until it expires (never, if ``ttl`` is None). Returns the
    token, which exists only in this return value."""
    label = label.strip()
    if not label:
        raise ValidationFailed("label must not be empty")
    if len(label) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"label is longer than {MAX_NAME_LENGTH} characters")
    if has_control_characters(label):
        raise ValidationFailed("label must not contain control characters")
    if ttl is not None and ttl <= timedelta(0):
        raise ValidationFailed("ttl must be positive")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        InitialAccessToken(
            token_hash=vault.token_hash(token),
            label=label,
            created_at=now,
            expires_at=None if ttl is None else now + ttl,
        )
    )
    session.commit()
    return token


def check_initial_access_token(session: Session, vault: Vault, token: str) -> bool:
    """True if the token was issued here and is neither expired nor revoked."""
    row = session.get(InitialAccessToken, vault.token_hash(token))
    if row is None or row.revoked_at is not None:
        return False
    return row.expires_at is None or row.expires_at > utcnow()
