from __future__ import annotations

from datetime import datetime

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
