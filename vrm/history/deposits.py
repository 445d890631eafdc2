"""The record of vendor deposits, and all the database may show of one.

A vendor deposits an event under its own ``Idempotency-Key``
(draft-ietf-httpapi-idempotency-key-header): a retry with the same key
and body returns the first event; the same key with another body is
refused. The row that makes this work must not itself say which vendor
deposited which event, or when to the microsecond (issue 13), so:

- ``key_hash`` is HMAC-SHA256 under the server's ``deposit-key`` of the
  vendor, the customer and the key (it may be an order number);
- ``body_hash`` likewise of the body: it tells a retry from a reuse and
  confirms nothing to whoever can guess the body (the vendor above all)
  but holds no key. NULL on rows from before migration 0010, whose body
  is unknown;
- there is no event id: the event's id is derived from ``key_hash`` under
  the same key (:func:`event_id_for`), shaped as the random version-4 UUIDs
  of every other event, so the row joins to no ``history_record`` by any
  column while a retry still finds its event;
- ``created_on`` is the UTC day, enough for a retention period counted in
  days and too coarse to match ``history_record.created_at``; the access
  event that records the write says the same day, at midnight, for the
  same reason.

The row stays when the customer deletes the event: it is the spent key
that keeps a retry from bringing the event back (409). It then refers to
nothing that exists, and said no more before. It goes with the account.

This lives in the store, beside the history it indexes, so that the
customer's export can list it (:func:`deposits_of`); the vendor API's
deposit use case builds on it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import ColumnElement
from sqlmodel import Field, Session, SQLModel, col, select

from vrm.catalogue.history import HistoryEvent
from vrm.dbtypes import utcnow
from vrm.history.models import HistoryRecord
from vrm.keys.service import Vault

SERVER_KEY = "deposit-key"


class VendorDeposit(SQLModel, table=True):
    """One spent Idempotency-Key of one vendor for one customer."""

    __tablename__ = "vendor_deposit"

    vendor_id: str = Field(primary_key=True, max_length=64)
    customer_id: str = Field(
        foreign_key="customer.id",
        ondelete="CASCADE",
        primary_key=True,
        index=True,
        max_length=32,
    )
    key_hash: bytes = Field(primary_key=True)
    body_hash: bytes | None = None
    created_on: date


def _digest(vault: Vault, *parts: str) -> bytes:
    return vault.server_mac(SERVER_KEY, "\0".join(parts).encode())


def key_hash(vault: Vault, *, vendor_id: str, customer_id: str, idempotency_key: str) -> bytes:
    # Unchanged since 0005: rows from before 0010 are still found by it.
    return _digest(vault, vendor_id, customer_id, idempotency_key)


def body_hash(vault: Vault, *, vendor_id: str, customer_id: str, event: HistoryEvent) -> bytes:
    # Labelled, so that no body digest can equal a key digest.
    return _digest(vault, "body", vendor_id, customer_id, event.model_dump_json())


def event_id_for(vault: Vault, key: bytes) -> str:
    """The id of the event deposited under ``key`` (a ``key_hash``):
    computable only with the server key, and, with the version and variant
    bits of RFC 9562 section 5.4 set, not told apart from a random id."""
    digest = _digest(vault, "event", key.hex())
    return uuid.UUID(bytes=digest[:16], version=4).hex


def pending_id_for(vault: Vault, key: bytes) -> str:
    """The id of the pending deposit (vrm/history/pending.py) made under
    ``key`` (a ``key_hash``): a retry finds it by this, and without the
    server key it is not told apart from a random id, nor joined to the
    event id, which is another digest."""
    digest = _digest(vault, "pending", key.hex())
    return uuid.UUID(bytes=digest[:16], version=4).hex


def new_deposit(
    vault: Vault, *, vendor_id: str, customer_id: str, idempotency_key: str, event: HistoryEvent
) -> VendorDeposit:
    """The row for a first deposit; the caller adds it with the event."""
    return VendorDeposit(
        vendor_id=vendor_id,
        customer_id=customer_id,
        key_hash=key_hash(
            vault, vendor_id=vendor_id, customer_id=customer_id, idempotency_key=idempotency_key
        ),
        body_hash=body_hash(vault, vendor_id=vendor_id, customer_id=customer_id, event=event),
        created_on=utcnow().date(),
    )


def spent(before: datetime) -> ColumnElement[bool]:
    """The records whose whole day ended before ``before``: a deposit made
    on that day was made before it, whatever its time of day, so a record
    is kept at least the whole retention period (vrm/purge.py)."""
    return col(VendorDeposit.created_on) < before.date()


def start_of(day: date) -> datetime:
    """Midnight UTC of ``day``: the time recorded of a deposit, wherever
    a column needs a datetime (the access event of the write)."""
    return datetime.combine(day, time(), UTC)


@dataclass(frozen=True)
class DepositRecord:
    """What a customer sees of one deposit: who, which day, and the event
    while it exists (None once they deleted it, or for a deposit made
    before migration 0010, whose event cannot be told)."""

    vendor_id: str
    created_on: date
    event_id: str | None


def deposits_of(*, session: Session, vault: Vault, customer_id: str) -> list[DepositRecord]:
    """The customer's deposit records, oldest day first (GDPR Art. 15)."""
    rows = session.exec(
        select(VendorDeposit)
        .where(col(VendorDeposit.customer_id) == customer_id)
        .order_by(col(VendorDeposit.created_on), col(VendorDeposit.vendor_id))
    ).all()
    # A row from before 0010 (no body hash) deposited an event with a
    # random id: its event cannot be told.
    ids = {event_id_for(vault, row.key_hash): row for row in rows if row.body_hash is not None}
    existing = set(
        session.exec(
            select(HistoryRecord.id).where(
                col(HistoryRecord.customer_id) == customer_id, col(HistoryRecord.id).in_(ids)
            )
        ).all()
    )
    found = {row.key_hash: event_id for event_id, row in ids.items() if event_id in existing}
    return [
        DepositRecord(
            vendor_id=row.vendor_id, created_on=row.created_on, event_id=found.get(row.key_hash)
        )
        for row in rows
    ]
