"""The outbox of revocation notices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, Index
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime

PENDING = "pending"
DELIVERED = "delivered"
PARKED = "parked"


class VendorNotice(SQLModel, table=True):
    """One tombstone (``feed_notice``) to push to its vendor.

    What the notice says (the grant, the fields to delete, the subject) is
    the tombstone's: it is read from there when the notice is sent, so an
    erased account's notice names only the pairwise subject, as its
    tombstone does. The notice goes with its tombstone, which the purge
    keeps while the notice is not delivered (vrm/purge.py)."""

    __tablename__ = "vendor_notice"
    __table_args__ = (Index("ix_vendor_notice_state_due", "state", "due_at"),)

    seq: int = Field(
        sa_column=Column(
            BigInteger,
            ForeignKey("feed_notice.seq", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        )
    )
    vendor_id: str = Field(foreign_key="vendor.id", ondelete="CASCADE", index=True, max_length=64)
    # The SET's jti, the same on every attempt, so that the vendor applies
    # it once however often it arrives.
    jti: str = Field(unique=True, max_length=32)
    # pending | delivered | parked
    state: str = Field(max_length=16)
    attempts: int = 0
    # When it was written: retries stop a day after.
    created_at: datetime = Field(sa_type=UTCDateTime)
    # Pending: when the next attempt is due (a worker that claims it moves
    # this past the attempt, so no other worker takes it meanwhile).
    due_at: datetime = Field(sa_type=UTCDateTime)
    # What the last attempt met: "202", "http 503", "timeout", "refused:
    # invalid_audience" (never a response body).
    outcome: str | None = Field(default=None, max_length=80)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
