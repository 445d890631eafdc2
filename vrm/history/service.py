"""History use cases.

Every field of an event is sealed, the vendor and the time included, so
filtering and ordering happen after decryption, per customer. That costs one
AES-GCM open per event in the customer's history on each list call (cheap:
docs/performance.md#encryption); see docs/keys.md for the trade-off.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from vrm.catalogue.history import HistoryEvent, kept_private
from vrm.dbtypes import utcnow
from vrm.errors import (
    BadRequest,
    IntegrityFailure,
    KeyUnavailable,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)
from vrm.etags import check_if_match, make_etag
from vrm.feed import changes
from vrm.history.models import (
    HistoryEventPublic,
    HistoryFilter,
    HistoryPage,
    HistoryRecord,
    StoredEvent,
)
from vrm.jsonmerge import merge_patch
from vrm.keys.service import Sealed, Vault

CATEGORY = "history"
MAX_LIMIT = 200


@dataclass
class EventView:
    event: HistoryEventPublic
    etag: str
    revision: int
    # Whether a vendor may ever have been shown it (StoredEvent.shared).
    shared: bool


def _open(session: Session, vault: Vault, row: HistoryRecord) -> EventView:
    plaintext = vault.open(
        session.connection(),
        customer_id=row.customer_id,
        category=CATEGORY,
        record_id=row.id,
        key_version=row.key_version,
        ciphertext=row.ciphertext,
    )
    stored = StoredEvent.model_validate_json(plaintext)
    return EventView(
        event=HistoryEventPublic(
            **stored.model_dump(exclude={"shared"}),
            id=row.id,
            created_at=row.created_at,
            updated_at=row.updated_at,
        ),
        etag=make_etag(row.revision, row.ciphertext),
        revision=row.revision,
        shared=stored.shared,
    )


def _shown(event: HistoryEvent) -> bool:
    """Whether this write of the event makes it shared (StoredEvent.shared):
    written without the ``private`` label, which the access policy
    (consent/policy.py, above the store) never lets a vendor see."""
    return not kept_private(event.labels)


def _seal(
    session: Session, vault: Vault, customer_id: str, event_id: str, stored: StoredEvent
) -> Sealed:
    return vault.seal(
        session,
        customer_id=customer_id,
        category=CATEGORY,
        record_id=event_id,
        plaintext=stored.model_dump_json(exclude_none=True).encode(),
    )


def add_event(
    *, session: Session, vault: Vault, customer_id: str, event: HistoryEvent, source: str
) -> EventView:
    row = insert_event(
        session=session, vault=vault, customer_id=customer_id, event=event, source=source
    )
    session.commit()
    session.refresh(row)
    return _open(session, vault, row)


def insert_event(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    event: HistoryEvent,
    source: str,
    event_id: str | None = None,
) -> HistoryRecord:
    """Add an event and put it on the change log; the caller commits. A
    vendor deposit passes the id it derived (vrm/history/deposits.py)."""
    event_id = event_id or uuid.uuid4().hex
    stored = StoredEvent(**event.model_dump(), source=source, shared=_shown(event))
    sealed = _seal(session, vault, customer_id, event_id, stored)
    now = utcnow()
    row = HistoryRecord(
        id=event_id,
        customer_id=customer_id,
        key_version=sealed.key_version,
        ciphertext=sealed.ciphertext,
        revision=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    changes.touch_event(session, customer_id=customer_id, event_id=event_id)
    return row


def _row(session: Session, customer_id: str, event_id: str) -> HistoryRecord:
    # Scoped by customer: another customer's event id is simply not found.
    row = session.exec(
        select(HistoryRecord).where(
            col(HistoryRecord.id) == event_id, col(HistoryRecord.customer_id) == customer_id
        )
    ).first()
    if row is None:
        raise NotFound("No such history event.")
    return row


def get_event(*, session: Session, vault: Vault, customer_id: str, event_id: str) -> EventView:
    return _open(session, vault, _row(session, customer_id, event_id))


def patch_event(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    event_id: str,
    patch: dict[str, Any],
    if_match: str | None,
) -> EventView:
    """Merge-patch an event (labels, notes, items...); ``source`` stays."""
    if "source" in patch:
        raise BadRequest("The source of an event cannot be changed.")
    for _ in range(5):
        row = _row(session, customer_id, event_id)
        current = _open(session, vault, row)
        check_if_match(if_match, current.etag)
        base = current.event.model_dump(
            mode="json", exclude={"id", "created_at", "updated_at", "source"}, exclude_none=True
        )
        try:
            event = HistoryEvent.model_validate(merge_patch(base, patch))
        except ValidationError as exc:
            raise ValidationFailed(
                "The patched event is invalid.",
                errors=[
                    {"field": ".".join(map(str, e["loc"])), "message": e["msg"], "code": e["type"]}
                    for e in exc.errors()
                ],
            ) from None
        stored = StoredEvent(
            **event.model_dump(),
            source=current.event.source,
            shared=current.shared or _shown(event),
        )
        sealed = _seal(session, vault, customer_id, event_id, stored)
        result = session.exec(
            update(HistoryRecord)
            .where(col(HistoryRecord.seq) == row.seq, col(HistoryRecord.revision) == row.revision)
            .values(
                ciphertext=sealed.ciphertext,
                key_version=sealed.key_version,
                revision=row.revision + 1,
                updated_at=utcnow(),
            )
        )
        if result.rowcount == 1:
            changes.touch_event(session, customer_id=customer_id, event_id=event_id)
            session.commit()
            return get_event(
                session=session, vault=vault, customer_id=customer_id, event_id=event_id
            )
        session.rollback()
    raise PreconditionFailed("The event is being changed by another request; try again.")


def delete_event(*, session: Session, vault: Vault, customer_id: str, event_id: str) -> None:
    row = _row(session, customer_id, event_id)
    shared = _was_shared(session, vault, row)
    session.exec(delete(HistoryRecord).where(col(HistoryRecord.seq) == row.seq))
    changes.event_deleted(session, customer_id=customer_id, event_id=event_id, shared=shared)
    session.commit()


def _was_shared(session: Session, vault: Vault, row: HistoryRecord) -> bool:
    """Whether vendors must be told the event is gone. One that cannot be
    opened (its key lost, its row altered) may still be deleted; vendors
    are then told, as they would be of any event they might hold."""
    try:
        return _open(session, vault, row).shared
    except (KeyUnavailable, IntegrityFailure):
        return True


def all_events(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    rows: Sequence[HistoryRecord] | None = None,
) -> list[HistoryEventPublic]:
    """Every event of the customer, newest first. A caller that loaded the
    customer's rows already (for many customers at once) passes them."""
    if rows is None:
        rows = session.exec(
            select(HistoryRecord).where(col(HistoryRecord.customer_id) == customer_id)
        ).all()
    elif any(row.customer_id != customer_id for row in rows):
        raise ValueError("rows of another customer")
    events = [_open(session, vault, row).event for row in rows]
    events.sort(key=_order_key, reverse=True)
    return events


def _order_key(event: HistoryEventPublic) -> tuple[datetime, str]:
    return (event.occurred_at, event.id)


def _matches(event: HistoryEventPublic, f: HistoryFilter) -> bool:
    if f.vendor is not None and event.vendor.casefold() != f.vendor.strip().casefold():
        return False
    if f.type is not None and event.type != f.type:
        return False
    if (
        f.label is not None
        and f.label not in event.labels
        and not any(f.label in item.labels for item in event.items)
    ):
        return False
    if f.since is not None and event.occurred_at < f.since:
        return False
    return not (f.until is not None and event.occurred_at >= f.until)


def encode_cursor(event: HistoryEventPublic) -> str:
    raw = json.dumps([event.occurred_at.isoformat(), event.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, event_id = json.loads(raw)
        parsed = datetime.fromisoformat(when)
        if parsed.tzinfo is None or not isinstance(event_id, str):
            raise ValueError
        return parsed, event_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise BadRequest("The cursor is not one this server gave out.") from None


def list_events(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    filters: HistoryFilter,
    cursor: str | None,
    limit: int,
) -> HistoryPage:
    """One page, newest first, after the cursor. A cursor stays valid while
    events are added or deleted: it names a position, not an offset."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}.")
    after = decode_cursor(cursor) if cursor else None
    selected = [
        e
        for e in all_events(session=session, vault=vault, customer_id=customer_id)
        if _matches(e, filters) and (after is None or _order_key(e) < after)
    ]
    page = selected[:limit]
    next_cursor = encode_cursor(page[-1]) if len(selected) > limit else None
    return HistoryPage(items=page, next_cursor=next_cursor)
