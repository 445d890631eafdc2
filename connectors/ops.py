"""Feed items as what a sink does with them.

Each item of the store's feed (docs/vendors.md, "The feed") becomes
operations on two tables, in the item's order: ``contacts`` (upsert the
mapped fields of a subject, delete some) and ``events`` (put an event,
delete one, delete all a subject's). Fields the mapping does not name are
dropped here, before anything reaches the sink.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from connectors.mapping import DOCUMENTS, HISTORY, FieldMap

CONTACTS = "contacts"
EVENTS = "events"


def _history_events(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("items"), list):
        return list(value["items"])
    return []


def ops_of(item: Mapping[str, Any], mapping: FieldMap) -> Iterator[dict[str, Any]]:
    """What the sink must do for one feed item, each op tagged with its
    table (``_table``)."""
    kind = item.get("type")
    found = item.get("subject")
    if not found:
        return
    subject = str(found)
    if kind == "snapshot":
        data = item.get("data") or {}
        # Everything the grant gives, whole: each document category replaces
        # what the sink holds of it (a field the grant does not give is
        # cleared), and so does the history.
        fields: dict[str, Any] = {}
        for category in DOCUMENTS:
            fields.update(mapping.apply(category, data.get(category) or {}))
        if fields:
            yield {"_table": CONTACTS, "op": "upsert", "subject": subject, "fields": fields}
        yield {"_table": EVENTS, "op": "delete_all", "subject": subject}
        for event in _history_events(data.get(HISTORY)):
            yield _put(subject, event)
    elif kind == "upsert":
        category = str(item.get("category"))
        document: Mapping[str, Any] = item.get("data") or {}
        if category == HISTORY:
            yield _put(subject, document)
        elif category in DOCUMENTS:
            fields = mapping.apply(category, document)
            if fields:
                yield {"_table": CONTACTS, "op": "upsert", "subject": subject, "fields": fields}
    elif kind == "delete":
        yield {
            "_table": EVENTS,
            "op": "delete",
            "subject": subject,
            "event_id": str(item.get("event_id")),
        }
    elif kind == "tombstone":
        named = [str(f) for f in item.get("fields") or []]
        if HISTORY in named:
            yield {"_table": EVENTS, "op": "delete_all", "subject": subject}
        yield {
            "_table": CONTACTS,
            "op": "delete_fields",
            "subject": subject,
            "fields": mapping.to_delete(named),
        }
    # "unreadable": keep what is held; the record comes again later.


def _put(subject: str, event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "_table": EVENTS,
        "op": "put",
        "subject": subject,
        "event_id": str(event.get("id")),
        "data": dict(event),
    }
