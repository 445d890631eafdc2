from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime


class AuthorizationCode(SQLModel, table=True):
    """An issued code, kept as a keyed hash. ``used_at`` is the tombstone that
    makes a second exchange detectable until the row expires."""

    __tablename__ = "authorization_code"

    code_hash: bytes = Field(primary_key=True)
    vendor_id: str = Field(foreign_key="vendor.id", ondelete="CASCADE", index=True)
    customer_id: str = Field(foreign_key="customer.id", ondelete="CASCADE", index=True)
    grant_id: str = Field(foreign_key="consent_grant.id", ondelete="CASCADE", index=True)
    redirect_uri: str = Field(max_length=2000)
    scope: str = Field(max_length=4000)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=8)
    nonce: str | None = Field(default=None, max_length=512)
    auth_time: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


# Only rows issued before migration 0006 are in the indexes on the hashes.
_LEGACY = text("legacy IS NOT NULL")


class OAuthToken(SQLModel, table=True):
    """An access token and, for customer grants, its refresh token; both as
    keyed hashes. Tokens of one authorization form a family (``family_id``):
    refreshing retires this row and issues the next one in the family, and
    replaying a retired refresh token revokes the whole family.

    A token carries its row's ``id`` (consent/oauth/tokens.py): the row is
    found by its primary key, which grows with time, and the hash checked
    after. Rows issued before 0006, whose tokens carry no id, are
    ``legacy`` and found by hash, through unique indexes on the hashes that
    newer rows stay out of: an index on a random hash puts every new token
    on a random page of it, one more page each commit writes."""

    __tablename__ = "oauth_token"
    __table_args__ = (
        # A grant's tokens, and one family of them: one index where two (on
        # the grant, on the family) each put every refresh on a page of
        # their own.
        Index("ix_oauth_token_grant_family", "grant_id", "family_id"),
        Index(
            "ix_oauth_token_legacy_access",
            "access_hash",
            unique=True,
            sqlite_where=_LEGACY,
            postgresql_where=_LEGACY,
        ),
        Index(
            "ix_oauth_token_legacy_refresh",
            "refresh_hash",
            unique=True,
            sqlite_where=_LEGACY,
            postgresql_where=_LEGACY,
        ),
    )

    id: str = Field(primary_key=True, max_length=32)
    access_hash: bytes
    refresh_hash: bytes | None = None
    legacy: bool | None = None
    # Indexed after the grant (ix_oauth_token_grant_family): a family never
    # leaves its grant.
    family_id: str = Field(max_length=32)
    vendor_id: str = Field(foreign_key="vendor.id", ondelete="CASCADE", index=True)
    # None for client-credentials tokens, which act for the vendor itself.
    grant_id: str | None = Field(default=None, foreign_key="consent_grant.id", ondelete="CASCADE")
    customer_id: str | None = Field(
        default=None, foreign_key="customer.id", ondelete="CASCADE", index=True
    )
    scope: str = Field(max_length=4000)
    issued_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    refresh_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set when this row's refresh token was exchanged for the next one.
    refreshed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # What this row's refresh token may do, when more than its access token
    # (a refresh that narrowed the access token: RFC 6749 6); None: the same.
    refresh_scope: str | None = Field(default=None, max_length=4000)
    # The first-party client's tokens of a customer-held customer: the root
    # key sealed under a key only the access token gives, and under one
    # only the refresh token gives (consent/oauth/first_party.py); None
    # for every other token.
    root_by_access: bytes | None = None
    root_by_refresh: bytes | None = None


class ClientAssertion(SQLModel, table=True):
    """JWT ids of private_key_jwt assertions already used, until they expire:
    an assertion works once (RFC 7523 3, item 7)."""

    __tablename__ = "client_assertion"

    vendor_id: str = Field(
        primary_key=True, foreign_key="vendor.id", ondelete="CASCADE", max_length=64
    )
    jti_hash: bytes = Field(primary_key=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class DeviceAuthorization(SQLModel, table=True):
    """A device authorization request (RFC 8628 3.1) while it waits for the
    customer, then its tombstone until it expires: the device code and the
    user code as keyed hashes only (consent/oauth/grants/device_code.py).
    ``approved`` is the customer's answer on the device page (None: not
    yet), ``customer_id`` who answered; ``polled_at`` and ``interval`` pace
    the device's polling (3.5 ``slow_down``); ``used_at`` makes the code
    work once. ``root_key`` is the public key a customer-held root key is
    sealed to on approval (``root_sealed``): its private key is derived
    from the device code (vrm/keys/custody.py, :func:`seal_for_device`)."""

    __tablename__ = "device_authorization"

    device_hash: bytes = Field(primary_key=True)
    user_code_hash: bytes = Field(unique=True, index=True)
    vendor_id: str = Field(foreign_key="vendor.id", ondelete="CASCADE")
    scope: str = Field(max_length=4000)
    interval: int
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    polled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    customer_id: str | None = Field(
        default=None, foreign_key="customer.id", ondelete="CASCADE", index=True
    )
    approved: bool | None = None
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    root_key: bytes | None = None
    root_sealed: bytes | None = None
