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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple, Protocol, TypeGuard

import orjson
from pydantic import ValidationError
from sqlalchemy import Connection, bindparam, delete, update
from sqlalchemy import select as core_select
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
from vrm.storage.statements import ManyKeys, Statement

CATEGORY = "history"
MAX_LIMIT = 200


class Stamped(Protocol):
    """An event's row as far as telling one version of the event from
    another goes: ``seq`` is never reused (not even after a delete) and
    ``revision`` grows with every write, so together they name the exact
    content of an event. A HistoryRecord is one, and so is a
    :class:`Stamp` or a :class:`SealedEvent`."""

    @property
    def id(self) -> str: ...
    @property
    def customer_id(self) -> str: ...
    @property
    def seq(self) -> int | None: ...
    @property
    def revision(self) -> int: ...


class Row(Stamped, Protocol):
    """What opening an event needs of its row."""

    @property
    def key_version(self) -> int: ...
    @property
    def ciphertext(self) -> bytes: ...


class Stamp(NamedTuple):
    id: str
    customer_id: str
    seq: int
    revision: int


class SealedEvent(NamedTuple):
    id: str
    customer_id: str
    seq: int
    revision: int
    key_version: int
    ciphertext: bytes


_STAMP = (
    HistoryRecord.id,
    HistoryRecord.customer_id,
    HistoryRecord.seq,
    HistoryRecord.revision,
)
_SEALED = (*_STAMP, HistoryRecord.key_version, HistoryRecord.ciphertext)
_STAMPS_OF = Statement(
    core_select(*_STAMP).where(col(HistoryRecord.customer_id) == bindparam("c"))  # type: ignore[call-overload]
)


def is_sealed(row: Stamped) -> TypeGuard[Row]:
    """Whether the row carries its ciphertext."""
    return isinstance(row, (SealedEvent, HistoryRecord))


def stamps_of(conn: Connection, customer_id: str) -> list[Stamp]:
    """Every event of the customer, as stamps, in no order."""
    return [Stamp(*row) for row in _STAMPS_OF.rows(conn, {"c": customer_id})]


# Events by customer, and by id.
_SEALED_OF = ManyKeys(core_select(*_SEALED), HistoryRecord.customer_id)  # type: ignore[call-overload]
_STAMPS_BY_ID = ManyKeys(core_select(*_STAMP), HistoryRecord.id)  # type: ignore[call-overload]
_SEALED_BY_ID = ManyKeys(core_select(*_SEALED), HistoryRecord.id)  # type: ignore[call-overload]
_TIMES_BY_ID = ManyKeys(
    core_select(HistoryRecord.id, HistoryRecord.created_at, HistoryRecord.updated_at),  # type: ignore[call-overload]
    HistoryRecord.id,
)


class SealedHistories:
    """The whole histories of several customers, sealed, read in one query
    per few hundred customers (:meth:`read`) and given out customer by
    customer (:meth:`of`). Held meanwhile as plain tuples, which the garbage
    collector stops tracking: a page of the feed holds tens of thousands of
    events while it is built, and as named tuples every full collection
    would walk them all."""

    def __init__(self) -> None:
        self._rows: dict[str, list[tuple[Any, ...]]] = {}

    def read(self, conn: Connection, customer_ids: Iterable[str]) -> None:
        """Read the histories of those of these customers not read yet."""
        wanted = {c for c in customer_ids if c not in self._rows}
        self._rows.update((c, []) for c in wanted)
        for row in _SEALED_OF.rows(conn, wanted):
            self._rows[row[1]].append(row)

    def of(self, customer_id: str) -> list[SealedEvent] | None:
        """Every event of the customer, in no order; None if not read."""
        rows = self._rows.get(customer_id)
        return None if rows is None else [SealedEvent._make(row) for row in rows]


def stamps_by_id(conn: Connection, event_ids: Iterable[str]) -> dict[str, Stamp]:
    """The events of these ids that exist, whoever's they are (the caller
    checks the customer), as stamps."""
    return {row[0]: Stamp(*row) for row in _STAMPS_BY_ID.rows(conn, event_ids)}


def sealed_by_id(conn: Connection, event_ids: Iterable[str]) -> dict[str, SealedEvent]:
    """The events of these ids that exist, whoever's they are (the caller
    checks the customer), sealed."""
    return {row[0]: SealedEvent(*row) for row in _SEALED_BY_ID.rows(conn, event_ids)}


def sealed_for(conn: Connection, stamps: Sequence[Stamped]) -> list[Row]:
    """The sealed row of each stamp: as it is if it carries its ciphertext,
    else read (one query for them all). ValueError if one is not as its
    stamp says: the stamps were read in another snapshot, a programming
    error."""
    unsealed = [s.id for s in stamps if not is_sealed(s)]
    read = sealed_by_id(conn, unsealed) if unsealed else {}
    rows: list[Row] = []
    for stamp in stamps:
        row = stamp if is_sealed(stamp) else read.get(stamp.id)
        if row is None or (row.customer_id, row.seq, row.revision) != (
            stamp.customer_id,
            stamp.seq,
            stamp.revision,
        ):
            raise ValueError(f"event {stamp.id} is not as its stamp says")
        rows.append(row)
    return rows


def open_stored(conn: Connection, vault: Vault, rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Each event as it was sealed: the JSON of a StoredEvent, validated
    when it was written and not again (a read of many events costs what
    opening them costs, not what validating them would). Each customer's
    keys are set up once for all their events (vrm/keys/service.py,
    ``open_many``)."""
    by_customer: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_customer.setdefault(row.customer_id, []).append(i)
    opened: list[Any] = [None] * len(rows)
    for customer_id, indexes in by_customer.items():
        plaintexts = vault.open_many(
            conn,
            customer_id=customer_id,
            category=CATEGORY,
            records=[(rows[i].id, rows[i].key_version, rows[i].ciphertext) for i in indexes],
        )
        for i, plaintext in zip(indexes, plaintexts, strict=True):
            stored = orjson.loads(plaintext)
            if not isinstance(stored, dict):
                raise IntegrityFailure("a stored history record is not an event")
            opened[i] = stored
    return opened


def order_of(stored: Mapping[str, Any], event_id: str) -> tuple[datetime, str]:
    """Where an event sorts in a history (newest first is the reverse)."""
    return (datetime.fromisoformat(stored["occurred_at"]), event_id)


def was_shared(stored: Mapping[str, Any]) -> bool:
    """StoredEvent.shared of a stored event (sealed as 1 or 0; absent on an
    event sealed before the flag existed, which reads as shared)."""
    return bool(stored.get("shared", True))


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
    created_at: datetime | None = None,
) -> HistoryRecord:
    """Add an event and put it on the change log; the caller commits. A
    vendor deposit passes the id it derived (vrm/history/deposits.py); a
    deposit held while the customer was away, also when it was made
    (vrm/history/pending.py)."""
    event_id = event_id or uuid.uuid4().hex
    stored = StoredEvent(**event.model_dump(), source=source, shared=_shown(event))
    sealed = _seal(session, vault, customer_id, event_id, stored)
    now = created_at or utcnow()
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


def as_inserted(
    *, event: HistoryEvent, source: str, event_id: str, at: datetime
) -> HistoryEventPublic:
    """The event as :func:`insert_event` stores it at ``at`` and
    :func:`get_event` then returns it, without storing or opening it: what
    a vendor's deposit answers, whether the event went into the history or
    is held for the customer (vrm/history/pending.py)."""
    stored = StoredEvent(**event.model_dump(), source=source, shared=_shown(event))
    again = StoredEvent.model_validate_json(stored.model_dump_json(exclude_none=True))
    return HistoryEventPublic(
        **again.model_dump(exclude={"shared"}), id=event_id, created_at=at, updated_at=at
    )


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
) -> list[HistoryEventPublic]:
    """Every event of the customer as a model, newest first (the export)."""
    rows = session.exec(
        select(HistoryRecord).where(col(HistoryRecord.customer_id) == customer_id)
    ).all()
    events = [_open(session, vault, row).event for row in rows]
    events.sort(key=_order_key, reverse=True)
    return events


def _order_key(event: HistoryEventPublic) -> tuple[datetime, str]:
    return (event.occurred_at, event.id)


def _matches(stored: Mapping[str, Any], when: datetime, f: HistoryFilter) -> bool:
    if f.vendor is not None and stored["vendor"].casefold() != f.vendor.strip().casefold():
        return False
    if f.type is not None and stored["type"] != f.type:
        return False
    if (
        f.label is not None
        and f.label not in stored.get("labels", ())
        and not any(f.label in item.get("labels", ()) for item in stored.get("items", ()))
    ):
        return False
    if f.since is not None and when < f.since:
        return False
    return not (f.until is not None and when >= f.until)


def opened_events(
    conn: Connection, vault: Vault, stamps: Sequence[Stamped]
) -> list[tuple[tuple[datetime, str], Mapping[str, Any]]]:
    """Each event as stored (:func:`open_stored`), with where it sorts, in
    the stamps' order. Kept a while in the vault's memory of what it
    decrypted (vrm/keys/derived.py) under the exact version of the event,
    so a customer paging or filtering a long history opens each event once;
    the mappings are shared, and never changed."""
    keys = [(row.customer_id, "event", row.id, row.seq, row.revision) for row in stamps]
    found = vault.derived.get_many(keys)
    missing = [i for i, hit in enumerate(found) if hit is None]
    if missing:
        rows = sealed_for(conn, [stamps[i] for i in missing])
        fresh = []
        for i, full, stored in zip(missing, rows, open_stored(conn, vault, rows), strict=True):
            found[i] = (order_of(stored, full.id), stored)
            # Decoded, an event takes about four times its JSON.
            fresh.append((keys[i], found[i], 4 * len(full.ciphertext)))
        vault.derived.put_many(fresh)
    return found


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
    events are added or deleted: it names a position, not an offset. Events
    are filtered as stored; only the page's are built as models."""
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}.")
    after = decode_cursor(cursor) if cursor else None
    conn = session.connection()
    events = opened_events(conn, vault, stamps_of(conn, customer_id))
    selected = [
        (order, stored)
        for order, stored in events
        if _matches(stored, order[0], filters) and (after is None or order < after)
    ]
    selected.sort(key=itemgetter(0), reverse=True)
    page = selected[:limit]
    times = {row[0]: row[1:] for row in _TIMES_BY_ID.rows(conn, [order[1] for order, _ in page])}
    items = [
        HistoryEventPublic.model_validate(
            {
                **{k: v for k, v in stored.items() if k != "shared"},
                "id": order[1],
                "created_at": times[order[1]][0],
                "updated_at": times[order[1]][1],
            }
        )
        for order, stored in page
    ]
    next_cursor = encode_cursor(items[-1]) if len(selected) > limit else None
    return HistoryPage(items=items, next_cursor=next_cursor)
