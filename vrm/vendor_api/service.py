"""A customer's data as one grant allows it, and the record of each read.

Projection is an allow-list: a category is read only when the grant names
it, a document keeps only the granted fields, and history drops every event
and item the customer labelled ``private`` whatever the grant says.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from consent.oauth.tokens import pairwise
from consent.scopes import Access
from vrm.catalogue import CATEGORIES
from vrm.dbtypes import utcnow
from vrm.errors import Forbidden, NotFound, Unauthenticated
from vrm.history import service as history
from vrm.history.models import HistoryEventPublic
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.vendor_api.models import AccessEvent

PRIVATE = "private"
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
        return {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}


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
        return {"WWW-Authenticate": challenge, "Cache-Control": "no-store"}


@dataclass(frozen=True)
class Reader:
    """One vendor reading one customer under one grant."""

    vendor_id: str
    customer_id: str
    grant_id: str
    purpose: str
    subject: str
    accesses: list[Access]


@dataclass(frozen=True)
class Projection:
    body: dict[str, Any]
    categories: list[str]
    fields: list[str]

    @property
    def etag(self) -> str:
        # Of the projected bytes: it changes when what this vendor may see
        # changes, and not when a field it cannot see does.
        return f'"{hashlib.sha256(canonical_json(self.body)).hexdigest()[:32]}"'


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


def _pairwise_event_id(vault: Vault, vendor_id: str, event_id: str) -> str:
    # Event ids are the same for every vendor; handing them out raw would
    # let two vendors link one customer's histories.
    return pairwise(vault, "pairwise-event", vendor_id, event_id, size=18)


def _shared_event(vault: Vault, vendor_id: str, event: HistoryEventPublic) -> dict[str, Any]:
    shared = event.model_dump(mode="json", include=_EVENT_FIELDS, exclude_none=True)
    shared["items"] = [i for i in shared["items"] if PRIVATE not in i["labels"]]
    for item in shared["items"]:
        item["labels"] = sorted(item["labels"])
    shared["labels"] = sorted(shared["labels"])
    return {"id": _pairwise_event_id(vault, vendor_id, event.id), **shared}


def _history(session: Session, vault: Vault, reader: Reader) -> list[dict[str, Any]]:
    events = history.all_events(session=session, vault=vault, customer_id=reader.customer_id)
    return [_shared_event(vault, reader.vendor_id, e) for e in events if PRIVATE not in e.labels]


def _document(
    session: Session, vault: Vault, reader: Reader, category: str, fields: tuple[str, ...]
) -> dict[str, Any]:
    data = records.read_document(
        session=session, vault=vault, customer_id=reader.customer_id, category=category
    ).data.model_dump(mode="json", exclude_none=True)
    # A granted field the customer left empty is sent as null: the vendor
    # can tell "not filled in" from "not granted".
    return {f: data.get(f) for f in fields}


def project(*, session: Session, vault: Vault, reader: Reader, categories: list[str]) -> Projection:
    """The granted part of ``categories``, with the names of what it holds.
    Callers pass only categories the grant covers (see require_category)."""
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
            body[category] = _history(session, vault, reader)
            returned.append(category)
        else:
            body[category] = _document(session, vault, reader, category, fields)
            returned.extend(f"{category}.{f}" for f in fields)
    return Projection(body=body, categories=[c for c in categories if c in body], fields=returned)


def record_access(
    *, session: Session, reader: Reader, projection: Projection, not_modified: bool
) -> AccessEvent:
    """Account for a read: names of what was returned, never values. The
    read's only write, so its only commit."""
    event = AccessEvent(
        id=uuid.uuid4().hex,
        at=utcnow(),
        vendor_id=reader.vendor_id,
        grant_id=reader.grant_id,
        subject=reader.subject,
        customer_id=reader.customer_id,
        purpose=reader.purpose,
        categories=projection.categories,
        fields=projection.fields,
        not_modified=not_modified,
    )
    session.add(event)
    session.commit()
    return event
