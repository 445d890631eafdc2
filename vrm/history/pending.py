"""Vendor deposits held for a customer who is away (docs/keys.md,
"Deposits while you are away").

A customer-held customer's history data key opens only in their session
or for a live grant that reads their history (vrm/keys/service.py). A
vendor's deposit made without either is sealed to the customer's public
key (vrm/keys/sealed_box.py) into ``pending_deposit``, and folded into
their history at their next log-in, as the deposit would have written it:
the same event id, source and creation time, and the same change-log
entry (which is what vendors' feeds follow). The deposit's access event
and its audit entry are written when the vendor deposits, on either path
(vrm/vendor_api/deposit.py): they record the vendor's act, which happened
then.

What a copy of the database shows of a pending row: the customer, the day
(as ``vendor_deposit.created_on``, and for the same reason:
vrm/history/deposits.py), a sealed box of the padded size of the event,
and an id that, without the server key, is a random one.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ValidationError
from sqlalchemy import PrimaryKeyConstraint, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from vrm.accounts.models import Customer
from vrm.catalogue.history import HistoryEvent
from vrm.crypto import aead
from vrm.errors import KeyUnavailable
from vrm.history import deposits
from vrm.history import service as history
from vrm.keys import sealed_box
from vrm.keys.service import Vault

logger = logging.getLogger(__name__)


class PendingDeposit(SQLModel, table=True):
    """One deposit sealed to its customer's public key, waiting for them.
    Keyed by the customer first, so that the table can be distributed by
    the customer id (docs/scaling.md, migration 0023)."""

    __tablename__ = "pending_deposit"
    __table_args__ = (PrimaryKeyConstraint("customer_id", "id"),)

    id: str = Field(primary_key=True, max_length=32)
    customer_id: str = Field(
        primary_key=True, foreign_key="customer.id", ondelete="CASCADE", index=True, max_length=32
    )
    created_on: date
    sealed: bytes


class _Held(BaseModel):
    """What is sealed: everything the fold writes into the history."""

    id: str
    source: str
    created_at: AwareDatetime
    event: HistoryEvent


def write(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    event: HistoryEvent,
    source: str,
    event_id: str,
    key: bytes,
    at: datetime,
) -> None:
    """A vendor's deposit made at ``at`` under ``key`` (its
    ``vendor_deposit.key_hash``): into the history if the history data key
    opens now, else held sealed for the customer. The caller commits. A
    customer whose key does not open and who has no public key (a
    customer-held one who has not logged in since migration 0021) cannot
    be written to: :class:`KeyUnavailable`, as before."""
    if vault.opens(session, customer_id, history.CATEGORY):
        history.insert_event(
            session=session,
            vault=vault,
            customer_id=customer_id,
            event=event,
            source=source,
            event_id=event_id,
            created_at=at,
        )
        return
    public_key = session.exec(
        select(Customer.deposit_public_key).where(col(Customer.id) == customer_id)
    ).first()
    if public_key is None:
        raise KeyUnavailable("the customer holds their keys and has no key to deposit to yet")
    held = _Held(id=event_id, source=source, created_at=at, event=event)
    session.add(
        PendingDeposit(
            id=deposits.pending_id_for(vault, key),
            customer_id=customer_id,
            created_on=at.date(),
            sealed=sealed_box.seal(public_key, customer_id, held.model_dump_json().encode()),
        )
    )


def is_held(*, session: Session, vault: Vault, customer_id: str, key: bytes) -> bool:
    """Whether the deposit made under ``key`` still waits for the customer."""
    row = session.get(
        PendingDeposit, {"customer_id": customer_id, "id": deposits.pending_id_for(vault, key)}
    )
    return row is not None


def waiting(session: Session, customer_id: str) -> bool:
    """Whether any deposit waits for the customer."""
    found = session.exec(
        select(PendingDeposit.id).where(col(PendingDeposit.customer_id) == customer_id).limit(1)
    ).first()
    return found is not None


def fold(*, session: Session, vault: Vault, customer: Customer, root: bytes) -> int:
    """Write the customer's pending deposits into their history, and delete
    them, in one transaction; returns how many. ``root`` is their root key,
    unlocked (they are logging in). One that does not open stays, and is
    logged without anything of it; another log-in folding the same rows at
    once leaves this one folding nothing. Never raises for either: a
    log-in must not fail for a deposit."""
    rows = session.exec(
        select(PendingDeposit)
        .where(col(PendingDeposit.customer_id) == customer.id)
        .order_by(col(PendingDeposit.created_on), col(PendingDeposit.id))
    ).all()
    if not rows:
        return 0
    opened: list[tuple[PendingDeposit, _Held]] = []
    for row in rows:
        try:
            if customer.deposit_private_key is None:
                raise aead.SealError("no private key")
            plaintext = sealed_box.open_sealed(
                root, customer.deposit_private_key, customer.id, row.sealed
            )
            opened.append((row, _Held.model_validate_json(plaintext)))
        except (aead.SealError, ValidationError):
            logger.warning("a pending deposit failed to open; it is kept")
    if not opened:
        return 0
    try:
        # Claimed first: a concurrent fold of the same rows waits here, then
        # finds them gone.
        result = session.exec(
            delete(PendingDeposit).where(
                col(PendingDeposit.customer_id) == customer.id,
                col(PendingDeposit.id).in_([r.id for r, _ in opened]),
            )
        )
        if result.rowcount != len(opened):
            session.rollback()
            return 0
        for _, held in opened:
            history.insert_event(
                session=session,
                vault=vault,
                customer_id=customer.id,
                event=held.event,
                source=held.source,
                event_id=held.id,
                created_at=held.created_at,
            )
        session.commit()
    except IntegrityError:
        session.rollback()
        logger.warning("pending deposits were folded by another request")
        return 0
    return len(opened)
