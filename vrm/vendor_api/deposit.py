"""A vendor's deposit into a customer's history (history:write), idempotent
by the Idempotency-Key the vendor sends."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from consent import policy
from vrm.catalogue.history import HistoryEvent
from vrm.dbtypes import utcnow
from vrm.errors import (
    BadRequest,
    Conflict,
    KeyUnavailable,
    NotFound,
    ValidationFailed,
)
from vrm.history import deposits, pending
from vrm.history import service as history
from vrm.history.deposits import VendorDeposit
from vrm.history.models import HistoryEventPublic
from vrm.keys.pairwise import pairwise_event_id
from vrm.keys.service import Vault
from vrm.vendor_api.accesses import access_row, add_accesses
from vrm.vendor_api.edge import InsufficientScope, Reader
from vrm.vendor_api.projection import shared_event


@dataclass(frozen=True)
class Deposit:
    event: dict[str, Any]
    created: bool


_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def deposit(
    *,
    session: Session,
    vault: Vault,
    reader: Reader,
    idempotency_key: str | None,
    event: HistoryEvent,
) -> Deposit:
    """Add a vendor's receipt or interaction to the customer's history,
    marked ``vendor:<client_id>``. The same key with the same body returns
    the first result; with another body it is refused. What is kept of the
    key, the body and the event: vrm/history/deposits.py."""
    if not policy.may_write(reader.accesses, history.CATEGORY):
        raise InsufficientScope(
            "The grant does not let this vendor add to the history.", scope="history:write"
        )
    if idempotency_key is None or not _KEY.match(idempotency_key):
        raise BadRequest(
            "Send an Idempotency-Key header: 1 to 255 visible ASCII characters, "
            "unique per item you deposit."
        )
    if event.labels or any(item.labels for item in event.items):
        raise ValidationFailed("Labels are the customer's own; deposit the event without them.")
    record = deposits.new_deposit(
        vault,
        vendor_id=reader.vendor_id,
        customer_id=reader.customer_id,
        idempotency_key=idempotency_key,
        event=event,
    )
    event_id = deposits.event_id_for(vault, record.key_hash)
    for _ in range(2):
        found = session.get(VendorDeposit, (reader.vendor_id, reader.customer_id, record.key_hash))
        if found is not None:
            return _repeat(session, vault, reader, found, record, event)
        # Every write in the try: the same key deposited concurrently (its
        # event id is the same too) can surface at any flush, the change
        # log's tick inside insert_event included, not only at the commit.
        # The other one won.
        now = utcnow()
        try:
            # Into the history, or held for a customer who is away.
            pending.write(
                session=session,
                vault=vault,
                customer_id=reader.customer_id,
                event=event,
                source=_source(reader),
                event_id=event_id,
                key=record.key_hash,
                at=now,
            )
            session.add(record)
            # Of the day only, like the record: the time of a write is the
            # time the event was created, and would name its vendor.
            access = access_row(reader, [history.CATEGORY], [history.CATEGORY], action="write")
            at = deposits.start_of(record.created_on)
            add_accesses(session.connection(), [{**access, "at": at}], via="deposit")
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return Deposit(event=_as_sent(vault, reader, event_id, event, now), created=True)
    raise Conflict("This Idempotency-Key is being used by another request; try again.")


def _repeat(
    session: Session,
    vault: Vault,
    reader: Reader,
    found: VendorDeposit,
    asked: VendorDeposit,
    event: HistoryEvent,
) -> Deposit:
    if found.body_hash is None:
        # Deposited before migration 0010, which could not key the body or
        # the event id: the key stays spent, without its event.
        raise Conflict(
            "This Idempotency-Key was used before the store was upgraded and its event "
            "can no longer be returned; it will not be added again."
        )
    if asked.body_hash is None or not hmac.compare_digest(found.body_hash, asked.body_hash):
        raise IdempotencyKeyReused(
            "This Idempotency-Key was used for a different event; use a new key."
        )
    event_id = deposits.event_id_for(vault, found.key_hash)
    if pending.is_held(
        session=session, vault=vault, customer_id=reader.customer_id, key=found.key_hash
    ):
        return Deposit(event=_as_sent(vault, reader, event_id, event, utcnow()), created=False)
    try:
        view = history.get_event(
            session=session, vault=vault, customer_id=reader.customer_id, event_id=event_id
        )
    except KeyUnavailable:
        # In the history, and the customer is away: the body, which the body
        # hash just confirmed is the one deposited, says what was stored,
        # as the first answer did.
        return Deposit(event=_as_sent(vault, reader, event_id, event, utcnow()), created=False)
    except NotFound:
        raise Conflict(
            "The customer has deleted the event deposited with this Idempotency-Key; "
            "it will not be added again."
        ) from None
    if not policy.visible(view.event.labels):
        # The customer hid it; say no more than that it was deposited.
        return Deposit(
            event={"id": pairwise_event_id(vault, reader.vendor_id, event_id)},
            created=False,
        )
    return Deposit(event=_shown(vault, reader, view.event), created=False)


def _source(reader: Reader) -> str:
    return f"vendor:{reader.vendor_id}"


def _as_sent(
    vault: Vault, reader: Reader, event_id: str, event: HistoryEvent, at: datetime
) -> dict[str, Any]:
    """The answer to a deposit, from the vendor's own body as the history
    stores it: the same whether it went into the history or waits for the
    customer, so the answer never tells whether they were away."""
    stored = history.as_inserted(event=event, source=_source(reader), event_id=event_id, at=at)
    return _shown(vault, reader, stored)


def _shown(vault: Vault, reader: Reader, event: HistoryEventPublic) -> dict[str, Any]:
    # As stored: without what is empty.
    stored = event.model_dump(mode="json", exclude_none=True)
    return shared_event(vault, reader.vendor_id, event.id, stored)


class IdempotencyKeyReused(ValidationFailed):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"
