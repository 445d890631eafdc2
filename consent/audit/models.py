"""Tables of the verifiable log.

``audit_entry``, ``audit_node``, ``audit_checkpoint`` and
``audit_cosignature`` are append-only: triggers on SQLite and PostgreSQL
refuse every UPDATE and DELETE (migration 0013). Only ``audit_head``, the
counter that hands out indexes, changes in place; it proves nothing, since
the tree and its signed checkpoints do.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary
from sqlmodel import Field, SQLModel

from vrm.dbtypes import UTCDateTime

# The tables whose rows the database refuses to change or delete.
APPEND_ONLY = ("audit_entry", "audit_node", "audit_checkpoint", "audit_cosignature")


class AuditHead(SQLModel, table=True):
    """The one row holding the log's size. An appender adds to it first, so
    its row lock (PostgreSQL) or the write lock (SQLite) makes appenders
    take turns until they commit, and indexes are gapless: a rolled back
    append gives its indexes back."""

    __tablename__ = "audit_head"

    id: int = Field(primary_key=True)
    size: int = Field(sa_column=Column(BigInteger, nullable=False))


class AuditEntry(SQLModel, table=True):
    """One leaf of the tree. ``body`` is the entry (consent/audit/entries.py)
    and ``leaf_hash`` its RFC 9162 leaf hash; the other columns repeat
    members of the body for the filters of the audit API."""

    __tablename__ = "audit_entry"
    __table_args__ = (
        Index("ix_audit_entry_customer_idx", "customer", "idx"),
        Index("ix_audit_entry_vendor_idx", "vendor_id", "idx"),
    )

    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    at: datetime = Field(sa_type=UTCDateTime)
    type: str = Field(max_length=32)
    customer: str | None = Field(default=None, max_length=32)
    vendor_id: str | None = Field(default=None, max_length=64)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditNode(SQLModel, table=True):
    """The hash of a complete subtree of 256**``level`` leaves (``level``
    1 and up), the ``idx``-th from the left: what the tiles above level 0
    hold (C2SP tlog-tiles), kept so that neither tiles nor proofs rehash the
    leaves below."""

    __tablename__ = "audit_node"

    level: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class AuditCheckpoint(SQLModel, table=True):
    """A signed checkpoint: the C2SP tlog-checkpoint body for ``size``
    entries in a signed note by the server's audit key."""

    __tablename__ = "audit_checkpoint"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signed_at: datetime = Field(sa_type=UTCDateTime)
    note: str


class AuditCosignature(SQLModel, table=True):
    """A witness's cosignature of a checkpoint: its signature line."""

    __tablename__ = "audit_cosignature"

    size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    witness: str = Field(primary_key=True, max_length=255)
    line: str
    received_at: datetime = Field(sa_type=UTCDateTime)
