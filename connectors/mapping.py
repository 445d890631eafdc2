"""From the store's fields to the sink's.

A mapping names store fields as the store's scopes and tombstones do: a
whole category (``preferences``, ``history``) or one field of a document
category (``profile.email``). Each maps to one sink field. A store field
the mapping does not name is dropped, never guessed; a mapping of a whole
category takes the document as it is (a JSON value in the sink).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# The sql, csv and jsonl sinks' own columns, by default.
DEFAULT: dict[str, str] = {
    "profile.given_name": "given_name",
    "profile.family_name": "family_name",
    "profile.email": "email",
    "profile.phone": "phone",
    "profile.postal_address": "postal_address",
    "profile.birth_date": "birth_date",
    "profile.language": "language",
    "preferences": "preferences",
}

# Categories whose data is a document of fields; history is events.
DOCUMENTS = ("profile", "preferences")
HISTORY = "history"


class FieldMap:
    """A mapping, checked: every store field is a category or a field of
    one, and no two store fields land in one sink field."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        seen: dict[str, str] = {}
        for store_field, sink_field in fields.items():
            category = store_field.split(".", 1)[0]
            if category not in DOCUMENTS:
                raise ValueError(f"mapping: {store_field!r} is not a profile or preferences field")
            if sink_field in seen:
                raise ValueError(
                    f"mapping: {store_field!r} and {seen[sink_field]!r} both map to {sink_field!r}"
                )
            seen[sink_field] = store_field
        self.fields = dict(fields)

    @property
    def sink_fields(self) -> list[str]:
        return list(self.fields.values())

    def apply(self, category: str, document: Mapping[str, Any]) -> dict[str, Any]:
        """The sink's fields of one category's document, as the store sent
        it (already cut to what the grant gives). A mapped field the
        document lacks is None: the grant does not give it, or it is
        empty."""
        out: dict[str, Any] = {}
        for store_field, sink_field in self.fields.items():
            if store_field == category:
                out[sink_field] = dict(document) if document else None
            elif store_field.startswith(category + "."):
                out[sink_field] = document.get(store_field.split(".", 1)[1])
        return out

    def to_delete(self, store_fields: Iterable[str]) -> list[str]:
        """The sink fields a tombstone's fields name. A tombstone's category
        names every field of it; a tombstone's field names the sink field
        mapped from it, or from its whole category (the document goes: the
        sink cannot keep the rest of it exactly, and the next upsert brings
        back what is still granted). ``history`` names none: its events
        are deleted instead."""
        named = set(store_fields)
        out = []
        for store_field, sink_field in self.fields.items():
            if any(_within(store_field, n) or _within(n, store_field) for n in named):
                out.append(sink_field)
        return out


def _within(field: str, parent: str) -> bool:
    """``field`` is ``parent`` or lies under it (``profile.email`` under
    ``profile``)."""
    return field == parent or field.startswith(parent + ".")
