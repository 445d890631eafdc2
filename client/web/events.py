"""A history event as a form: shown from the store, read back as typed,
and turned into what ``vrm.history.service`` takes (a ``HistoryEvent`` to
add, a merge patch to change one). The catalogue's schema decides what is
valid; its errors are moved to the form row they came from."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic import ValidationError
from starlette.datastructures import FormData

from client.web.forms import errors_of, field_messages
from consent.pages import FormError, form_fields, form_list
from vrm.catalogue.history import Channel, EventType, HistoryEvent, Label
from vrm.errors import VRMError
from vrm.history.models import HistoryEventPublic

TYPES = [(v, v.replace("_", " ")) for v in get_args(EventType)]
CHANNELS = [(v, v) for v in get_args(Channel)]
RATINGS = [(str(n), f"{n} of 5") for n in range(1, 6)]
# As many item rows as the schema holds, and a few blank ones to add.
MAX_ROWS = 510
BLANK_ROWS = 2

_EVENT_FIELDS = {
    "vendor": "Vendor",
    "type": "What happened",
    "occurred_at": "When",
    "amount": "Amount",
    "currency": "Currency",
    "channel": "Channel",
    "rating": "Your rating",
    "notes": "Notes",
    "labels": "Labels",
}
_ITEM_FIELDS = {"name": "name", "sku": "product code", "quantity": "quantity", "amount": "amount"}
_ROW = re.compile(r"items\.(\d+)\.(name|sku|quantity|amount|labels)")
_MAX = 4000


def blank(rows: int = BLANK_ROWS) -> dict[str, Any]:
    return {
        **dict.fromkeys(_EVENT_FIELDS, ""),
        "labels": [],
        "items": [_blank_row() for _ in range(rows)],
    }


def _blank_row() -> dict[str, Any]:
    return {**dict.fromkeys(_ITEM_FIELDS, ""), "labels": []}


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def shown(event: HistoryEventPublic) -> dict[str, Any]:
    """The event as the form shows it; the time in UTC, as the form asks."""
    when = event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
    return {
        "vendor": event.vendor,
        "type": event.type,
        "occurred_at": when,
        "amount": _text(event.amount),
        "currency": _text(event.currency),
        "channel": _text(event.channel),
        "rating": _text(event.rating),
        "notes": _text(event.notes),
        "labels": sorted(event.labels),
        "items": [
            {
                "name": item.name,
                "sku": _text(item.sku),
                "quantity": str(item.quantity),
                "amount": _text(item.amount),
                "labels": sorted(item.labels),
            }
            for item in event.items
        ]
        + [_blank_row() for _ in range(BLANK_ROWS)],
    }


def typed(data: FormData) -> dict[str, Any]:
    """The form as typed; a form no page of ours sends is a FormError."""
    limits = {name: _MAX for name in _EVENT_FIELDS if name != "labels"}
    rows = sorted({int(m.group(1)) for k in data if (m := _ROW.fullmatch(k))})
    if len(rows) > MAX_ROWS:
        raise FormError(f"at most {MAX_ROWS} items")
    for row in rows:
        limits.update({f"items.{row}.{name}": _MAX for name in _ITEM_FIELDS})
    sent = form_fields(data, limits)
    labels = len(get_args(Label))
    values: dict[str, Any] = {name: sent[name] for name in _EVENT_FIELDS if name != "labels"}
    values["labels"] = form_list(data, "labels", max_items=labels, max_length=_MAX)
    values["items"] = [
        {
            **{name: sent[f"items.{row}.{name}"] for name in _ITEM_FIELDS},
            "labels": form_list(data, f"items.{row}.labels", max_items=labels, max_length=_MAX),
        }
        for row in rows
    ]
    return values


def _when(text: str) -> str | None:
    # The form's time is UTC (its label says so); the schema wants an offset.
    return f"{text}Z" if text.strip() else None


def _filled(row: Mapping[str, Any]) -> bool:
    # Not the quantity alone: the form shows an item's as 1, and emptying
    # the rest of its row is how the customer removes it.
    return any(row[name].strip() for name in ("name", "sku", "amount")) or bool(row["labels"])


def _body(values: Mapping[str, Any]) -> tuple[dict[str, Any], list[int]]:
    """The event as JSON, every empty field null, and which form row each
    item came from (blank rows are left out)."""
    rows = [i for i, row in enumerate(values["items"]) if _filled(row)]
    body: dict[str, Any] = {
        name: (values[name] if values[name].strip() else None)
        for name in _EVENT_FIELDS
        if name not in ("labels", "occurred_at")
    }
    body["occurred_at"] = _when(values["occurred_at"])
    body["labels"] = list(values["labels"])
    # An item is replaced whole: its empty fields are left out, not null.
    body["items"] = [
        {
            **{
                name: values["items"][i][name]
                for name in _ITEM_FIELDS
                if values["items"][i][name].strip()
            },
            "labels": list(values["items"][i]["labels"]),
        }
        for i in rows
    ]
    return body, rows


def new_event(values: Mapping[str, Any]) -> HistoryEvent:
    """The event to add; pydantic's ValidationError names what is wrong,
    and :func:`messages` puts it on the form."""
    body, _rows = _body(values)
    return HistoryEvent.model_validate({k: v for k, v in body.items() if v is not None})


def change(values: Mapping[str, Any], before: HistoryEventPublic) -> dict[str, Any]:
    """The merge patch that makes the event say what the form says. The
    time is left alone when it is the same instant, so that an event
    written with another offset keeps it."""
    body, _rows = _body(values)
    when = body.pop("occurred_at")
    try:
        same = when is not None and datetime.fromisoformat(when) == before.occurred_at
    except ValueError:
        same = False
    if not same:
        body["occurred_at"] = when
    return body


def labels_of(values: Mapping[str, Any]) -> dict[str, str]:
    """Every field of the form by name, in the words of its label."""
    names = dict(_EVENT_FIELDS)
    for row in range(len(values["items"])):
        for name, words in _ITEM_FIELDS.items():
            names[f"items.{row}.{name}"] = f"Item {row + 1}, {words}"
        names[f"items.{row}.labels"] = f"Item {row + 1}, labels"
    return names


def messages(exc: ValidationError | VRMError, values: Mapping[str, Any]) -> dict[str, str]:
    """The schema's or the service's errors, on the form's fields: an item's
    position in the event is turned back into its row on the form."""
    rows = _body(values)[1]
    moved = []
    for error in errors_of(exc):
        field = str(error.get("field", ""))
        found = re.fullmatch(r"items\.(\d+)(\..*)?", field)
        if found and int(found.group(1)) < len(rows):
            field = f"items.{rows[int(found.group(1))]}{found.group(2) or ''}"
        moved.append({**error, "field": field})
    return field_messages(moved, labels_of(values))
