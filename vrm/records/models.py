from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime


class DocumentRecord(SQLModel, table=True):
    """A customer's document for one category, sealed. ``revision`` grows by
    one with every write and drives the ETag."""

    __tablename__ = "document_record"

    customer_id: str = Field(
        primary_key=True, foreign_key="customer.id", ondelete="CASCADE", max_length=32
    )
    category: str = Field(primary_key=True, max_length=32)
    key_version: int
    ciphertext: bytes
    revision: int
    updated_at: datetime = Field(sa_type=UTCDateTime)
