"""A customer's data as one grant allows it, and the record of each read.

Projection is an allow-list: a category is read only when the grant names
it, a document keeps only the granted fields, and history drops every event
and item the customer labelled ``private`` whatever the grant says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from consent.oauth.tokens import ActiveToken, check_access_token
from consent.scopes import Access
from vrm.catalogue import CATEGORIES
from vrm.catalogue.history import HistoryEvent
from vrm.dbapi import Statement
from vrm.dbtypes import utcnow
from vrm.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from vrm.history import deposits
from vrm.history import service as history
from vrm.history.deposits import VendorDeposit
from vrm.history.models import HistoryEventPublic, HistoryRecord
from vrm.keys.pairwise import pairwise_event_id, pairwise_subject
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.vendor_api.models import AccessEvent

PRIVATE = "private"
NO_CUSTOMER = "This token names no customer; use one from the authorization code flow."
# What of a stored event a vendor sees: the event as the customer wrote it,
# without our bookkeeping (source, created_at, updated_at).
_EVENT_FIELDS = {
    "vendor",
    "type",
    "occurred_at",
    "items",
    "amount",
    "currency",
    "channel",
    "rating",
    "notes",
    "labels",
}


class InvalidToken(Unauthenticated):
    """RFC 6750 3.1: no token, or one that is not active (unknown, expired,
    revoked, or its grant ended)."""

    slug = "invalid-token"

    def __init__(self, detail: str, *, token_sent: bool) -> None:
        super().__init__(detail)
        self.token_sent = token_sent

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer realm="vrm"'
        if self.token_sent:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class InsufficientScope(Forbidden):
    """RFC 6750 3.1 ``insufficient_scope``: the token is good, the grant
    does not cover what was asked."""

    slug = "insufficient-scope"

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        super().__init__(detail, **({"scope": scope} if scope else {}))
        self.scope = scope

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer realm="vrm", error="insufficient_scope"'
        if self.scope:
            challenge += f', scope="{self.scope}"'
        return {"WWW-Authenticate": challenge}


@dataclass(frozen=True)
class Reader:
    """One vendor reading one customer under one grant."""

    vendor_id: str
    customer_id: str
    grant_id: str
    purpose: str
    subject: str
    accesses: list[Access]


def active_token(conn: Connection, vault: Vault, token: str | None) -> ActiveToken:
    """What the Bearer token sent may do right now; InvalidToken if none was
    sent or it is not active."""
    if token is None:
        raise InvalidToken("Send an access token as Authorization: Bearer.", token_sent=False)
    active = check_access_token(conn, vault, token)
    if active is None:
        raise InvalidToken("The access token is not active.", token_sent=True)
    return active


def reader_of(vault: Vault, active: ActiveToken) -> Reader:
    """The reader an access token from the authorization code flow stands
    for; InsufficientScope for a token that names no customer."""
    customer_id = active.token.customer_id
    if customer_id is None or active.grant is None:
        raise InsufficientScope(NO_CUSTOMER)
    return Reader(
        vendor_id=active.vendor.id,
        customer_id=customer_id,
        grant_id=active.grant.id,
        purpose=active.grant.purpose,
        subject=pairwise_subject(vault, active.vendor.id, customer_id),
        accesses=active.accesses,
    )


@dataclass(frozen=True)
class Projection:
    body: dict[str, Any]
    categories: list[str]
    fields: list[str]

    @cached_property
    def json(self) -> bytes:
        return canonical_json(self.body)

    @property
    def etag(self) -> str:
        # Of the projected bytes: it changes when what this vendor may see
        # changes, and not when a field it cannot see does.
        return f'"{hashlib.sha256(self.json).hexdigest()[:32]}"'


def canonical_json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def granted_fields(accesses: list[Access], category: str) -> tuple[str, ...] | None:
    """The fields of a category the accesses may read, in catalogue order;
    None when the category is not readable at all."""
    reads = [a for a in accesses if a.category == category and a.action == "read"]
    if not reads:
        return None
    catalogue_fields = CATEGORIES[category].fields
    if any(a.field is None for a in reads):
        return catalogue_fields
    wanted = {a.field for a in reads}
    return tuple(f for f in catalogue_fields if f in wanted)


def readable_categories(accesses: list[Access]) -> list[str]:
    return [c for c in CATEGORIES if granted_fields(accesses, c) is not None]


def require_category(reader: Reader, category: str) -> None:
    if category not in CATEGORIES:
        raise NotFound(f"No data category {category!r}.")
    if granted_fields(reader.accesses, category) is None:
        raise InsufficientScope(f"The grant does not include {category}.", scope=f"{category}:read")


def shared_event(vault: Vault, vendor_id: str, event: HistoryEventPublic) -> dict[str, Any]:
    """An event as a vendor sees it: pairwise id, no private items, no
    bookkeeping. The caller has already dropped private events."""
    shared = event.model_dump(mode="json", include=_EVENT_FIELDS, exclude_none=True)
    shared["items"] = [i for i in shared["items"] if PRIVATE not in i["labels"]]
    for item in shared["items"]:
        item["labels"] = sorted(item["labels"])
    shared["labels"] = sorted(shared["labels"])
    return {"id": pairwise_event_id(vault, vendor_id, event.id), **shared}


def _history(
    session: Session | None, vault: Vault, reader: Reader, rows: list[HistoryRecord] | None
) -> list[dict[str, Any]]:
    if session is None:
        raise ValueError("reading the history needs a session")
    events = history.all_events(
        session=session, vault=vault, customer_id=reader.customer_id, rows=rows
    )
    return [shared_event(vault, reader.vendor_id, e) for e in events if PRIVATE not in e.labels]


def _document(
    session: Session | None,
    vault: Vault,
    reader: Reader,
    category: str,
    fields: tuple[str, ...],
    documents: Mapping[str, dict[str, Any]] | None,
) -> dict[str, Any]:
    if documents is not None:
        data = documents[category]
    elif session is None:
        raise ValueError("reading a document needs a session or the documents")
    else:
        data = records.read_fields(
            session=session, vault=vault, customer_id=reader.customer_id, category=category
        )
    # A granted field the customer left empty is sent as null: the vendor
    # can tell "not filled in" from "not granted".
    return {f: data.get(f) for f in fields}


def project(
    *,
    session: Session | None,
    vault: Vault,
    reader: Reader,
    categories: list[str],
    history_rows: list[HistoryRecord] | None = None,
    documents: Mapping[str, dict[str, Any]] | None = None,
) -> Projection:
    """The granted part of ``categories``, with the names of what it holds.
    Callers pass only categories the grant covers (see require_category),
    and may pass the customer's history rows, or their documents as
    :func:`vrm.records.service.read_fields` gives them, if they read them
    already."""
    body: dict[str, Any] = {
        "subject": reader.subject,
        "grant_id": reader.grant_id,
        "purpose": reader.purpose,
    }
    returned: list[str] = []
    for category in categories:
        fields = granted_fields(reader.accesses, category)
        if fields is None:
            continue
        if CATEGORIES[category].kind == "events":
            body[category] = _history(session, vault, reader, history_rows)
            returned.append(category)
        else:
            body[category] = _document(session, vault, reader, category, fields, documents)
            returned.extend(f"{category}.{f}" for f in fields)
    return Projection(body=body, categories=[c for c in categories if c in body], fields=returned)


def new_event_id() -> str:
    return uuid.uuid4().hex


def access_row(
    reader: Reader,
    categories: list[str],
    fields: list[str],
    *,
    action: str = "read",
    not_modified: bool = False,
) -> dict[str, Any]:
    """One read (or deposit) of one customer's data, as an access_event row:
    names of what was returned, never values."""
    return {
        "id": new_event_id(),
        "at": utcnow(),
        "vendor_id": reader.vendor_id,
        "grant_id": reader.grant_id,
        "subject": reader.subject,
        "customer_id": reader.customer_id,
        "purpose": reader.purpose,
        "categories": categories,
        "fields": fields,
        "not_modified": not_modified,
        "action": action,
    }


# On the driver's cursor (vrm/dbapi.py): this runs on every read, and the
# ORM's unit of work, or even a Core execution, cost more than the insert.
_INSERT_ACCESS = Statement(insert(AccessEvent))


def add_accesses(db: Session | Connection, rows: list[dict[str, Any]]) -> None:
    """Insert access events (from :func:`access_row`). The caller commits,
    before answering."""
    conn = db.connection() if isinstance(db, Session) else db
    if len(rows) == 1:
        _INSERT_ACCESS.execute(conn, rows[0])
    elif rows:
        _INSERT_ACCESS.execute_many(conn, rows)


def add_access(
    session: Session | Connection,
    reader: Reader,
    categories: list[str],
    fields: list[str],
    *,
    action: str = "read",
    not_modified: bool = False,
) -> None:
    add_accesses(
        session,
        [access_row(reader, categories, fields, action=action, not_modified=not_modified)],
    )


MAX_HISTORY_LIMIT = 200
DEFAULT_HISTORY_LIMIT = 100


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
    if not any(a.category == history.CATEGORY and a.action == "write" for a in reader.accesses):
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
            return _repeat(session, vault, reader, found, record)
        history.insert_event(
            session=session,
            vault=vault,
            customer_id=reader.customer_id,
            event=event,
            source=f"vendor:{reader.vendor_id}",
            event_id=event_id,
        )
        session.add(record)
        # Of the day only, like the record: the time of a write is the
        # time the event was created, and would name its vendor.
        access = access_row(reader, [history.CATEGORY], [history.CATEGORY], action="write")
        add_accesses(session, [{**access, "at": deposits.start_of(record.created_on)}])
        try:
            session.commit()
        except IntegrityError:
            # The same key deposited concurrently (its event id is the same
            # too): the other one won.
            session.rollback()
            continue
        view = history.get_event(
            session=session, vault=vault, customer_id=reader.customer_id, event_id=event_id
        )
        return Deposit(event=shared_event(vault, reader.vendor_id, view.event), created=True)
    raise Conflict("This Idempotency-Key is being used by another request; try again.")


def _repeat(
    session: Session, vault: Vault, reader: Reader, found: VendorDeposit, asked: VendorDeposit
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
    try:
        view = history.get_event(
            session=session, vault=vault, customer_id=reader.customer_id, event_id=event_id
        )
    except NotFound:
        raise Conflict(
            "The customer has deleted the event deposited with this Idempotency-Key; "
            "it will not be added again."
        ) from None
    if PRIVATE in view.event.labels:
        # The customer hid it; say no more than that it was deposited.
        return Deposit(
            event={"id": pairwise_event_id(vault, reader.vendor_id, event_id)},
            created=False,
        )
    return Deposit(event=shared_event(vault, reader.vendor_id, view.event), created=False)


class IdempotencyKeyReused(ValidationFailed):
    slug = "idempotency-key-reused"
    title = "Idempotency-Key reused with another request"
