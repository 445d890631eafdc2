from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, PrimaryKeyConstraint
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime


class AccessEvent(SQLModel, table=True):
    """One vendor read of one customer's data: who, under which grant and
    purpose, which categories and fields. Names of fields only, never values.

    ``vendor_id`` and ``grant_id`` carry no foreign key on purpose: the record
    of a read must outlive the vendor's registration and the grant. It goes
    with the customer's account (``customer_id`` cascades), since it is about
    them and they are who will read it.

    Keyed by the customer first, so that the table can be distributed by
    the customer id (docs/scaling.md, migration 0023)."""

    __tablename__ = "access_event"
    __table_args__ = (PrimaryKeyConstraint("customer_id", "id"),)

    id: str = Field(primary_key=True, max_length=32)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    vendor_id: str = Field(index=True, max_length=64)
    grant_id: str = Field(index=True, max_length=32)
    # The pairwise subject the vendor saw, so the vendor's own logs and ours
    # can be matched without either naming the customer.
    subject: str = Field(max_length=64)
    customer_id: str = Field(
        primary_key=True, foreign_key="customer.id", ondelete="CASCADE", index=True, max_length=32
    )
    purpose: str = Field(max_length=100)
    categories: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # e.g. ["profile.email", "history"]: what the response carried.
    fields: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # A 304: the vendor learned that these fields had not changed.
    not_modified: bool = False
    # read: data went to the vendor; write: the vendor deposited history.
    action: str = Field(default="read", max_length=8)
