from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints
from pydantic import Field as PydanticField
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime

Password = Annotated[str, StringConstraints(min_length=12, max_length=1024)]


class Customer(SQLModel, table=True):
    """An account. The email is stored sealed; lookups use ``email_index``,
    a keyed blind index of the normalised address."""

    id: str = Field(primary_key=True, max_length=32)
    email_index: bytes = Field(unique=True)
    email_ct: bytes
    key_version: int
    password_hash: str = Field(max_length=255)
    created_at: datetime = Field(sa_type=UTCDateTime)
    password_changed_at: datetime = Field(sa_type=UTCDateTime)
    # The customer's name in the audit log and the salt of its commitments
    # (consent/audit/entries.py): erased with the account, which leaves the
    # log verifiable and its entries about them unlinkable to anyone.
    audit_salt: bytes = Field(default_factory=lambda: secrets.token_bytes(32))
    # A customer-held root key (vrm/keys/custody.py), wrapped by the key the
    # password gives and by the recovery key's; both NULL while the root key
    # is the server's (in the key store), as before migration 0019.
    root_by_password: bytes | None = None
    root_by_recovery: bytes | None = None
    # What a vendor deposits while a customer-held customer is away is
    # sealed to this X25519 public key (vrm/keys/sealed_box.py); its private
    # key is sealed under the root key. Both NULL for a server-held
    # customer, and for a customer-held one until their first log-in after
    # migration 0021.
    deposit_public_key: bytes | None = None
    deposit_private_key: bytes | None = None


class LoginSession(SQLModel, table=True):
    """A logged-in browser or API client. Opened only by a password check,
    so ``created_at`` is the login time (OIDC ``auth_time``, ``max_age``).

    Found by ``token_hash`` on every request; ``id`` is the random name the
    customer sees and ends it by, unrelated to the token. ``device_ct`` is
    the device's description (vrm/accounts/devices.py), sealed and padded;
    NULL for sessions opened before it was recorded (migration 0012)."""

    __tablename__ = "login_session"

    token_hash: bytes = Field(primary_key=True)
    id: str = Field(unique=True, index=True, max_length=32)
    customer_id: str = Field(foreign_key="customer.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime = Field(sa_type=UTCDateTime)
    key_version: int
    device_ct: bytes | None = None
    # The customer-held root key, sealed under a key only the session's
    # token gives (vrm/keys/custody.py); NULL for a server-held one.
    root_sealed: bytes | None = None


class LoginThrottle(SQLModel, table=True):
    """Login attempt counters (vrm/accounts/throttle.py), keyed by a blind
    index of the client address, or of the account email and the address
    together, so neither is stored in the clear."""

    __tablename__ = "login_throttle"

    key: bytes = Field(primary_key=True)
    failures: int = 0
    window_started_at: datetime = Field(sa_type=UTCDateTime)
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class SignUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    password: Password


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    new_password: Password


class PasswordConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class SessionPublic(BaseModel):
    """One live session as its customer sees it; never its token."""

    id: str = PydanticField(description="Names the session to end it; unrelated to its token.")
    device: str = PydanticField(
        description='From the User-Agent at log-in, e.g. "Firefox on Linux"; "Unknown device".'
    )
    created_at: datetime = PydanticField(description="When the password was given.")
    last_used_at: datetime = PydanticField(description="Accurate to within five minutes.")
    expires_at: datetime
    current: bool = PydanticField(description="Whether this request came with this session.")


class SessionList(BaseModel):
    items: list[SessionPublic]


class AccountPublic(BaseModel):
    id: str
    email: str
    created_at: datetime


class AccountCreated(AccountPublic):
    recovery_key: str | None = PydanticField(
        description="Shown this once and never stored: with the password forgotten, only it "
        "opens your data (POST /api/v1/recovery). Null when this server holds your keys."
    )


class LoggedIn(AccountPublic):
    recovery_key: str | None = PydanticField(
        description="Set when this log-in handed your keys over to you: this server held them "
        "until now. Shown this once and never stored: with the password forgotten, only it "
        "opens your data (POST /api/v1/recovery). Null on every other log-in."
    )


class Recovery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    recovery_key: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    new_password: Password


class Recovered(BaseModel):
    recovery_key: str = PydanticField(
        description="Your new recovery key, shown this once: the one you used no longer works."
    )
