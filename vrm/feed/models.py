"""Tables of the change log.

Positions come from one counter, :class:`FeedClock`, taken as the last
statement before a write commits. Its row lock (PostgreSQL) or the database
write lock (SQLite) is held until commit, so positions become visible in
order: a reader that has seen position N has seen every position below N.
That is what makes a cursor safe to resume from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, Index
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime


class FeedClock(SQLModel, table=True):
    """The one row holding the last position handed out."""

    __tablename__ = "feed_clock"

    id: int = Field(primary_key=True)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))


class DataChange(SQLModel, table=True):
    """The latest change to one record of one customer (a compacted log).

    A new write to a record moves its row to a new position instead of
    adding one, so the log holds one row per record and a reader resuming
    from an old cursor gets each record once, as it is now. Names only ids
    and categories, never data: everything else is sealed in the records.
    """

    __tablename__ = "data_change"
    __table_args__ = (
        Index("ix_data_change_seq", "seq", unique=True),
        Index("ix_data_change_customer_seq", "customer_id", "category", "seq"),
    )

    customer_id: str = Field(
        foreign_key="customer.id", ondelete="CASCADE", primary_key=True, max_length=32
    )
    category: str = Field(primary_key=True, max_length=32)
    # The event id for history; the category name for a document.
    record_id: str = Field(primary_key=True, max_length=32)
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    # put | delete
    op: str = Field(max_length=8)
    at: datetime = Field(sa_type=UTCDateTime)


class FeedNotice(SQLModel, table=True):
    """Something one vendor must hear about one of its grants: that it
    started (the feed sends the customer's granted data whole), or that it
    ended or shrank (the feed sends a tombstone naming what to delete).

    No foreign key to the grant or the customer: a tombstone must outlive
    both (an erased account's grants are gone, and the vendor still has to
    delete its copy). Erasing an account replaces ``customer_id`` with the
    pairwise ``subject`` the vendor knows, so nothing names the customer.
    """

    __tablename__ = "feed_notice"
    __table_args__ = (Index("ix_feed_notice_vendor_seq", "vendor_id", "seq"),)

    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    vendor_id: str = Field(foreign_key="vendor.id", ondelete="CASCADE", max_length=64)
    grant_id: str = Field(index=True, max_length=32)
    # started | ended | shortened (not on the feed: it only tells a
    # revocation notice of the grant's new expiry, consent/notices)
    kind: str = Field(max_length=16)
    # For ended: revoked | narrowed | expired | account_deleted; shortened
    reason: str | None = Field(default=None, max_length=32)
    # Until the account is erased; then None and ``subject`` is set.
    customer_id: str | None = Field(default=None, index=True, max_length=32)
    subject: str | None = Field(default=None, max_length=64)
    # For ended: the fields to delete (``profile.email``, ``history``).
    fields: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Makes a notice that two readers might both write (an expiry) land once.
    dedupe_key: str | None = Field(default=None, unique=True, max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)
    # For shortened: the grant's new expiry.
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
