from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, field_serializer
from sqlmodel import Field, SQLModel

from vrm.catalogue.history import HistoryEvent, Label
from vrm.dbtypes import UTCDateTime


class HistoryRecord(SQLModel, table=True):
    """One sealed history event. Everything about the event, vendor and
    time included, is inside ``ciphertext``; ``seq`` orders changes."""

    __tablename__ = "history_record"
    # Never reuse a sequence number, even after the newest row is deleted:
    # readers use seq to follow changes.
    __table_args__ = {"sqlite_autoincrement": True}

    seq: int | None = Field(default=None, primary_key=True)
    id: str = Field(unique=True, max_length=32)
    customer_id: str = Field(
        foreign_key="customer.id", ondelete="CASCADE", index=True, max_length=32
    )
    key_version: int
    ciphertext: bytes
    revision: int
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class StoredEvent(HistoryEvent):
    """What is sealed: the event, who wrote it, and whether a vendor may
    ever have been shown it.

    ``shared`` is set once the event is written without the ``private``
    label, and never cleared: a vendor must be told to drop an event made
    private later, and must never hear of one private all along (see
    vrm/feed/changes.py). It lives in here, not on the change log, because
    which events a customer keeps private is itself personal. An event
    sealed before the flag existed (migration 0009) reads as shared: a
    vendor that may hold it is then always told to drop it.
    """

    source: str = "customer"
    shared: bool = True

    @field_serializer("shared")
    def _as_digit(self, shared: bool) -> int:
        # 1 or 0, never true or false: the sealed length must not tell.
        return int(shared)


class HistoryEventPublic(HistoryEvent):
    """An event as its customer sees it (never ``shared``: bookkeeping)."""

    source: str = "customer"
    id: str
    created_at: datetime
    updated_at: datetime


class HistoryPage(BaseModel):
    items: list[HistoryEventPublic]
    next_cursor: str | None


class HistoryFilter(BaseModel):
    vendor: str | None = None
    type: str | None = None
    label: Label | None = None
    since: datetime | None = None
    until: datetime | None = None
