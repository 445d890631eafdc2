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
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlmodel import Session, col, select

from consent.audit import events as audit
from consent.grants import revocation
from consent.grants.models import Grant
from consent.vendors.errors import InvalidClientMetadata
from consent.vendors.metadata import (
    MAX_NAME_LENGTH,
    ClientMetadata,
    check_metadata,
    has_control_characters,
)
from consent.vendors.models import GRANT_TYPES, InitialAccessToken, Vendor
from vrm.dbtypes import utcnow
from vrm.errors import Conflict, NotFound, ValidationFailed
from vrm.keys.service import Vault

CLIENT_ID_PREFIX = "vnd_"
AUDITOR_ID_PREFIX = "aud_"
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
    vendor, secret = _new_vendor(vault, metadata, registered_by)
    session.add(vendor)
    audit.vendor_changed(session.connection(), vendor, "registered", by=registered_by)
    session.commit()
    session.refresh(vendor)
    return vendor, secret


def _new_vendor(
    vault: Vault, metadata: ClientMetadata, registered_by: Literal["operator", "dynamic"]
) -> tuple[Vendor, str | None]:
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
    return vendor, secret


def get(session: Session, client_id: str) -> Vendor | None:
    """The vendor, disabled or not: callers check ``disabled_at``."""
    return session.get(Vendor, client_id)


def list_vendors(session: Session, *, role: str = "vendor") -> list[Vendor]:
    """The vendors (or, with ``role="auditor"``, the auditors), oldest first."""
    return list(
        session.exec(
            select(Vendor)
            .where(Vendor.role == role)
            .order_by(col(Vendor.created_at), col(Vendor.id))
        ).all()
    )


def register_auditor(session: Session, vault: Vault, *, name: str) -> tuple[Vendor, str]:
    """An auditor: a confidential client that takes client-credentials
    tokens for the audit log (``audit:read``) and for nothing else, with no
    redirect URI, so no customer can ever be asked to grant it anything.
    Returns it and its client secret, which exists only in this value."""
    if not name.strip() or len(name) > 200:
        raise InvalidClientMetadata("an auditor's name is 1 to 200 characters")
    secret = _new_secret()
    auditor = Vendor(
        id=AUDITOR_ID_PREFIX + secrets.token_urlsafe(16),
        name=name,
        secret_hash=vault.token_hash(secret),
        redirect_uris=[],
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
        grant_types=["client_credentials"],
        registered_by="operator",
        role="auditor",
        created_at=utcnow(),
    )
    session.add(auditor)
    audit.vendor_changed(session.connection(), auditor, "registered", by="operator")
    session.commit()
    session.refresh(auditor)
    return auditor, secret


def _existing(session: Session, client_id: str) -> Vendor:
    vendor = session.get(Vendor, client_id)
    if vendor is None:
        raise NotFound(UNKNOWN_VENDOR)
    return vendor


def disable(session: Session, vault: Vault, client_id: str) -> Vendor:
    """Mark the vendor disabled; it can no longer authenticate. Idempotent:
    a second call keeps the first time."""
    vendor = _existing(session, client_id)
    if vendor.disabled_at is None:
        vendor.disabled_at = utcnow()
        session.add(vendor)
        _end_grants(session, vault, vendor, by="operator")
        audit.vendor_changed(session.connection(), vendor, "disabled", by="operator")
        session.commit()
        session.refresh(vendor)
    return vendor


def _end_grants(session: Session, vault: Vault, vendor: Vendor, *, by: str) -> None:
    """A vendor that is gone holds no consent: its customers see their
    grants with it as revoked, not as active grants that no longer work."""
    active = session.exec(
        select(Grant).where(Grant.vendor_id == vendor.id, col(Grant.revoked_at).is_(None))
    ).all()
    for grant in active:
        revocation.revoke(session, vault, grant, by=by)


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


# -- dynamic registration (RFC 7591) and its management (RFC 7592) ----------


@dataclass(frozen=True)
class DynamicRegistration:
    """A vendor that registered itself, with the credentials that exist only
    here: its client secret (None for private_key_jwt) and its registration
    access token."""

    vendor: Vendor
    client_secret: str | None
    registration_token: str


def register_dynamic(
    session: Session, vault: Vault, *, metadata: ClientMetadata
) -> DynamicRegistration:
    """Store a vendor that registered itself with an initial access token.
    ``metadata`` is what :func:`~consent.vendors.metadata.check_metadata`
    returned. Besides the client secret, the vendor gets a registration
    access token for RFC 7592; both are kept only as keyed hashes."""
    vendor, secret = _new_vendor(vault, metadata, "dynamic")
    token = _new_secret()
    vendor.registration_token_hash = vault.token_hash(token)
    session.add(vendor)
    audit.vendor_changed(session.connection(), vendor, "registered", by="dynamic")
    session.commit()
    session.refresh(vendor)
    return DynamicRegistration(vendor=vendor, client_secret=secret, registration_token=token)


def check_registration_token(vault: Vault, vendor: Vendor, token: str) -> bool:
    """True if ``token`` is this vendor's registration access token and the
    vendor is enabled. Compares keyed hashes in constant time. Operator
    registered vendors have no such token, so never match."""
    if vendor.registration_token_hash is None or vendor.disabled_at is not None:
        return False
    return hmac.compare_digest(vault.token_hash(token), vendor.registration_token_hash)


def update_registration(session: Session, vendor: Vendor, *, metadata: ClientMetadata) -> Vendor:
    """Replace the vendor's metadata with ``metadata`` (RFC 7592 section 2.2:
    what the client left out is removed). The credentials stay as they are,
    so the authentication method may move between client_secret_basic and
    client_secret_post but not across the line between a secret and
    private_key_jwt: that would need a new secret, or leave a live one
    behind. Such a client registers anew."""
    was_jwt = vendor.token_endpoint_auth_method == PRIVATE_KEY_JWT
    if was_jwt != (metadata.token_endpoint_auth_method == PRIVATE_KEY_JWT):
        raise InvalidClientMetadata(
            "token_endpoint_auth_method cannot move between a client secret and "
            "private_key_jwt; register a new client instead"
        )
    vendor.name = metadata.name
    vendor.redirect_uris = metadata.redirect_uris
    vendor.logo_uri = metadata.logo_uri
    vendor.policy_uri = metadata.policy_uri
    vendor.notify_uri = metadata.notify_uri
    vendor.contacts = metadata.contacts
    vendor.token_endpoint_auth_method = metadata.token_endpoint_auth_method
    vendor.grant_types = metadata.grant_types
    vendor.jwks = metadata.jwks
    session.add(vendor)
    session.commit()
    session.refresh(vendor)
    return vendor


def delete_registration(session: Session, vault: Vault, vendor: Vendor) -> None:
    """RFC 7592 section 2.3: the client is gone for every purpose. The row
    stays disabled (grants and receipts name it) and its registration access
    token is forgotten; tokens of a disabled vendor no longer work."""
    if vendor.disabled_at is None:
        vendor.disabled_at = utcnow()
        _end_grants(session, vault, vendor, by="vendor")
        audit.vendor_changed(session.connection(), vendor, "disabled", by="vendor")
    vendor.registration_token_hash = None
    session.add(vendor)
    session.commit()
