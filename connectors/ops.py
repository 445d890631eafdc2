"""Feed items as what a sink does with them.

Each item of the store's feed (docs/vendors.md, "The feed") becomes
operations on two tables, in the item's order: ``contacts`` (upsert the
mapped fields of a subject, delete some) and ``events`` (put an event,
delete one, delete all a subject's). Fields the mapping does not name are
dropped here, before anything reaches the sink.

dlt carries a page's ops as one Arrow table per sink table
(:func:`tables_of`), its fast path: a dict per op cost the connector more
than the store's whole feed (docs/connectors.md, "Speed"). The ops'
mappings travel as JSON text, so every page has the same columns, and
:func:`ops_from` reads them back for the sink.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson
import pyarrow as pa

from connectors.mapping import DOCUMENTS, HISTORY, FieldMap

CONTACTS = "contacts"
EVENTS = "events"
# An op's mapping (a contact's fields, an event) as JSON text.
_JSON = {CONTACTS: "fields", EVENTS: "data"}
SCHEMAS = {
    CONTACTS: pa.schema([("op", pa.string()), ("subject", pa.string()), ("fields", pa.string())]),
    EVENTS: pa.schema(
        [
            ("op", pa.string()),
            ("subject", pa.string()),
            ("event_id", pa.string()),
            ("data", pa.string()),
        ]
    ),
}


def tables_of(items: Iterable[Mapping[str, Any]], mapping: FieldMap) -> dict[str, pa.Table]:
    """The ops of ``items``, in order, as one Arrow table per sink table
    (none for a table without ops)."""
    rows: dict[str, list[dict[str, Any]]] = {CONTACTS: [], EVENTS: []}
    for item in items:
        for op in ops_of(item, mapping):
            table = op.pop("_table")
            name = _JSON[table]
            if name in op:
                op[name] = orjson.dumps(op[name]).decode()
            rows[table].append(op)
    return {
        table: pa.Table.from_pylist(found, schema=SCHEMAS[table])
        for table, found in rows.items()
        if found
    }


def ops_from(table: str, batch: Any) -> list[dict[str, Any]]:
    """A batch of :func:`tables_of`'s rows (a ``pyarrow.RecordBatch``, as
    dlt hands it to the destination) as ops again."""
    name = _JSON[table]
    ops: list[dict[str, Any]] = batch.to_pylist()
    for op in ops:
        if op.get(name) is not None:
            op[name] = orjson.loads(op[name])
    return ops


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
