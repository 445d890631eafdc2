"""A customer's data as one grant allows it.

Projection is an allow-list: a category is read only when the grant names
it, a document keeps only the granted fields, and history drops every event
and item the customer labelled ``private`` whatever the grant says. What is
granted and what is private, the access policy decides (consent/policy.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlmodel import Session

from consent import policy
from vrm.catalogue import CATEGORIES
from vrm.errors import NotFound
from vrm.history import service as history
from vrm.history.models import HistoryEventPublic, HistoryRecord
from vrm.keys.pairwise import pairwise_event_id
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.vendor_api.edge import InsufficientScope, Reader

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


def require_category(reader: Reader, category: str) -> None:
    if category not in CATEGORIES:
        raise NotFound(f"No data category {category!r}.")
    if policy.fields_of(reader.accesses, category) is None:
        raise InsufficientScope(f"The grant does not include {category}.", scope=f"{category}:read")


def shared_event(vault: Vault, vendor_id: str, event: HistoryEventPublic) -> dict[str, Any]:
    """An event as a vendor sees it: pairwise id, no private items, no
    bookkeeping. The caller has already dropped private events."""
    shared = event.model_dump(mode="json", include=_EVENT_FIELDS, exclude_none=True)
    shared["items"] = [i for i in shared["items"] if policy.visible(i["labels"])]
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
    return [shared_event(vault, reader.vendor_id, e) for e in events if policy.visible(e.labels)]


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
        fields = policy.fields_of(reader.accesses, category)
        if fields is None:
            continue
        if CATEGORIES[category].kind == "events":
            body[category] = _history(session, vault, reader, history_rows)
            returned.append(category)
        else:
            body[category] = _document(session, vault, reader, category, fields, documents)
            returned.extend(f"{category}.{f}" for f in fields)
    return Projection(body=body, categories=[c for c in categories if c in body], fields=returned)
