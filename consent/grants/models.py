from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime


class Grant(SQLModel, table=True):
    """Consent a customer gave one vendor. ``scopes`` are the granted data
    scopes (``profile.email:read``...), never more than the vendor asked for.
    Every token carries its grant id and every use checks the grant, so a
    revoked, narrowed or expired grant takes effect on the next request."""

    __tablename__ = "consent_grant"

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(foreign_key="customer.id", ondelete="CASCADE", index=True)
    vendor_id: str = Field(foreign_key="vendor.id", ondelete="CASCADE", index=True)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    openid: bool = False
    # RFC 9396 authorization_details as granted (None when asked with scopes).
    authorization_details: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    purpose: str = Field(max_length=100)
    legal_basis: str = Field(default="dpv:Consent", max_length=100)
    # ISO 8601 duration the vendor may keep copies, e.g. "P1Y".
    retention: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # customer | vendor | account_deleted
    revoked_by: str | None = Field(default=None, max_length=32)
    # Where on the change log the grant started (vrm/feed): the vendor's
    # feed sends the data whole there and only later changes after it.
    feed_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class GrantChange(SQLModel, table=True):
    """Every change to a grant, in order: the consent record's history."""

    __tablename__ = "grant_change"
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    grant_id: str = Field(foreign_key="consent_grant.id", ondelete="CASCADE", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    # granted | narrowed | shortened | revoked
    kind: str = Field(max_length=16)
    by: str = Field(max_length=16)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
