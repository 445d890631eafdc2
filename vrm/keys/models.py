from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime


class DataKey(SQLModel, table=True):
    """One data key per customer, category and version, wrapped by the
    customer's root key (``root_version``) in the key store."""

    __tablename__ = "data_key"

    customer_id: str = Field(
        primary_key=True, foreign_key="customer.id", ondelete="CASCADE", max_length=32
    )
    category: str = Field(primary_key=True, max_length=32)
    version: int = Field(primary_key=True)
    root_version: int
    wrapped: bytes
    created_at: datetime = Field(sa_type=UTCDateTime)


class KeyEscrow(SQLModel, table=True):
    """A copy of a customer-held data key for one holder (a grant), wrapped
    by the holder's escrow key in the key store (``escrow_version``), so
    that vendors read what the grant shares while the customer is away
    (vrm/keys/service.py, :meth:`Vault.escrow`). It goes when the grant no
    longer needs it, and the escrow key with it."""

    __tablename__ = "key_escrow"
    __table_args__ = (Index("ix_key_escrow_key", "customer_id", "category", "version"),)

    holder_id: str = Field(primary_key=True, max_length=64)
    category: str = Field(primary_key=True, max_length=32)
    version: int = Field(primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", ondelete="CASCADE", max_length=32)
    escrow_version: int
    wrapped: bytes
    created_at: datetime = Field(sa_type=UTCDateTime)


class ServerKeyCheck(SQLModel, table=True):
    """What each server key gives for a fixed message (HMAC-SHA256), kept
    when the key was first loaded: a whole key that is not the one this
    database was made with (restored from another installation, or another
    key's file) is then refused at start, by name (vrm/keys/server.py).
    Tells nothing of the key."""

    __tablename__ = "server_key_check"

    name: str = Field(primary_key=True, max_length=64)
    mac: bytes
