"""A customer's data as one grant allows it.

Projection is an allow-list: a category is read only when the grant names
it, a document keeps only the granted fields, and history drops every event
and item the customer labelled ``private`` whatever the grant says. What is
granted and what is private, the access policy decides (consent/policy.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from operator import attrgetter
from typing import Any, NamedTuple

import orjson
from pydantic_core import PydanticUndefined
from sqlmodel import Session

from consent import policy
from vrm.catalogue import CATEGORIES
from vrm.catalogue.history import Item
from vrm.errors import NotFound
from vrm.history import service as history
from vrm.keys.pairwise import pairwise_event_id
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.vendor_api.edge import InsufficientScope, Reader

# What of a stored event a vendor sees: the event as the customer wrote it,
# without our bookkeeping (source, shared, created_at, updated_at).
EVENT_FIELDS = frozenset(
    {
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
)
# An item's defaults, for an item sealed before a field had one.
_ITEM_DEFAULTS = {
    name: f.default
    for name, f in Item.model_fields.items()
    if f.default is not None and f.default is not PydanticUndefined
}


class Raw(bytes):
    """A value already serialised as canonical JSON, which
    :func:`canonical_json` puts into a body as it is."""


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


# A Raw value is first written as a string that starts with a NUL and a
# secret of this process (so no customer's string can pose as one), then
# replaced by its bytes.
_SPLICE = "\0" + os.urandom(12).hex() + ":"
_SPLICED = re.compile(re.escape(json.dumps(_SPLICE)[:-1]).encode() + rb'(\d+)"')


def canonical_json(body: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes a vendor gets and their ETag
    is of. :class:`Raw` values anywhere in ``body`` go in as they are."""
    raws: list[bytes] = []

    def splice(value: object) -> str:
        if isinstance(value, Raw):
            raws.append(value)
            return f"{_SPLICE}{len(raws) - 1}"
        raise TypeError(f"{type(value).__name__} is not JSON")

    text = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=splice
    ).encode()
    if not raws:
        return text
    return _SPLICED.sub(lambda m: raws[int(m[1])], text)


def event_json(shown: dict[str, Any]) -> bytes:
    """:func:`canonical_json` of an event's view, at several times its speed:
    orjson writes the same bytes for what an event holds (strings, small
    integers, lists and objects; tests/vendor_api/test_event_view.py), but
    not for every float or integer a free-form document may hold, so it is
    used for events only.

    A right-sized copy: orjson's own bytes keep the whole buffer it wrote
    into (4 KiB or more, whatever the length), and the vault's memory keeps
    tens of thousands of these (vrm/keys/derived.py counts their length)."""
    return bytes(memoryview(orjson.dumps(shown, option=orjson.OPT_SORT_KEYS)))


def require_category(reader: Reader, category: str) -> None:
    if category not in CATEGORIES:
        raise NotFound(f"No data category {category!r}.")
    if policy.fields_of(reader.accesses, category) is None:
        raise InsufficientScope(f"The grant does not include {category}.", scope=f"{category}:read")


def shared_event(
    vault: Vault, vendor_id: str, event_id: str, event: Mapping[str, Any]
) -> dict[str, Any]:
    """An event as a vendor sees it, from the event as stored (its JSON,
    which leaves out what is empty): pairwise id, no private items, no
    bookkeeping, labels sorted. The caller has already dropped private
    events."""
    shown = {k: v for k, v in event.items() if k in EVENT_FIELDS}
    shown["items"] = [
        {**_ITEM_DEFAULTS, **item, "labels": sorted(item.get("labels", ()))}
        for item in event.get("items", ())
        if policy.visible(item.get("labels", ()))
    ]
    shown["labels"] = sorted(event.get("labels", ()))
    return {"id": pairwise_event_id(vault, vendor_id, event_id), **shown}


class ShownEvent(NamedTuple):
    """One stored event as one vendor may see it now. The vault's memory
    keeps it as a plain tuple (see :func:`shown_events`)."""

    order: tuple[datetime, str]  # see vrm.history.service.order_of
    # Its canonical JSON (plain bytes: a Raw, like any instance of a
    # subclass, is tracked by the garbage collector); None: the customer
    # keeps it private.
    json: bytes | None
    shared: bool  # whether a vendor may ever have been shown it


def _keys(vendor_id: str, rows: Sequence[history.Stamped]) -> list[tuple[Any, ...]]:
    return [
        (row.customer_id, "vendor-event", vendor_id, row.id, row.seq, row.revision) for row in rows
    ]


def all_in_memory(vault: Vault, vendor_id: str, rows: Sequence[history.Stamped]) -> bool:
    """Whether :func:`shown_events` would find every row's event in the
    vault's memory, and so open none."""
    return None not in vault.derived.get_many(_keys(vendor_id, rows))


def shown_events(
    session: Session, vault: Vault, vendor_id: str, rows: Sequence[history.Stamped]
) -> list[ShownEvent]:
    """Each row's event as the vendor may see it, in the rows' order. Rows
    without their ciphertext (stamps) are read again where it is needed.

    Kept for a while in the vault's memory of what it decrypted
    (vrm/keys/derived.py), keyed by the vendor and the exact version of the
    event (its row's ``seq`` and ``revision``, which every write changes): an
    event written again (relabelled, edited, re-deposited) is new to it, and
    a deleted one is never asked for. Nothing else changes the answer: the
    grant decides only whether the history is read at all, which is checked
    on every read before this."""
    keys = _keys(vendor_id, rows)
    # Kept as plain tuples of atomic values, which the garbage collector
    # stops tracking (it never stops tracking a named tuple): tens of
    # thousands of them would otherwise be walked by every full collection.
    found: list[ShownEvent | None] = [
        None if kept is None else ShownEvent._make(kept) for kept in vault.derived.get_many(keys)
    ]
    missing = [i for i, shown in enumerate(found) if shown is None]
    if not missing:
        return found  # type: ignore[return-value]  # no None in it
    conn = session.connection()
    fulls = history.sealed_for(conn, [rows[i] for i in missing])
    fresh: list[tuple[tuple[Any, ...], tuple[Any, ...], int]] = []
    for i, full, stored in zip(
        missing, fulls, history.open_stored(conn, vault, fulls), strict=True
    ):
        visible = policy.visible(stored.get("labels", ()))
        shown = ShownEvent(
            history.order_of(stored, full.id),
            event_json(shared_event(vault, vendor_id, full.id, stored)) if visible else None,
            history.was_shared(stored),
        )
        found[i] = shown
        fresh.append((keys[i], tuple(shown), len(shown.json or b"")))
    vault.derived.put_many(fresh)
    return found  # type: ignore[return-value]  # every None was filled


_ORDER = attrgetter("order")


def _history(
    session: Session | None, vault: Vault, reader: Reader, rows: Sequence[history.Stamped] | None
) -> Raw:
    """The customer's history as the vendor may see it, newest first."""
    if session is None:
        raise ValueError("reading the history needs a session")
    if rows is None:
        rows = history.stamps_of(session.connection(), reader.customer_id)
    elif any(row.customer_id != reader.customer_id for row in rows):
        raise ValueError("rows of another customer")
    shown = [e for e in shown_events(session, vault, reader.vendor_id, rows) if e.json is not None]
    shown.sort(key=_ORDER, reverse=True)
    return Raw(b"[" + b",".join([e.json for e in shown if e.json is not None]) + b"]")


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
            session=session,
            vault=vault,
            customer_id=reader.customer_id,
            category=category,
            fields=fields,
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
    history_rows: Sequence[history.Stamped] | None = None,
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
