"""What a vendor would receive, in words, for the consent page: beside each
access it asks for, the customer's own value as the grant would give it.

Which fields an access opens and which events a vendor never sees are the
access policy's (:func:`consent.policy.fields_of`, :func:`consent.policy.visible`);
this module only reads the customer's data and writes it short. A long value
is cut, so the page shows enough to recognise it and no more."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlmodel import Session

from consent import policy
from consent.policy import Access
from vrm.catalogue import CATEGORIES
from vrm.errors import NotFound
from vrm.history import service as history
from vrm.keys.service import Vault
from vrm.records import service as records

# Longer values are cut to this many characters, an ellipsis included.
LONGEST = 40


def masked(value: Any) -> str:
    """A value as the page shows it: ``not filled in`` for nothing, nested
    values flattened, anything longer than :data:`LONGEST` cut."""
    if value is None or value == "" or value == {} or value == []:
        return "not filled in"
    if isinstance(value, Mapping):
        text = ", ".join(masked(v) for v in value.values() if v not in (None, ""))
    elif isinstance(value, list | tuple):
        text = ", ".join(masked(v) for v in value)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    else:
        text = str(value)
    return text if len(text) <= LONGEST else text[: LONGEST - 1] + "…"


def preview(
    session: Session, vault: Vault, customer_id: str, accesses: Sequence[Access]
) -> dict[str, str]:
    """For each access (by its scope), what the vendor would receive, in a
    few words; nothing for an access that adds data rather than reading it."""
    documents: dict[str, dict[str, Any]] = {}
    shown: dict[str, str] = {}
    for access in accesses:
        if access.action != "read":
            continue
        category = CATEGORIES[access.category]
        if category.kind == "events":
            shown[access.scope] = _history_words(session, vault, customer_id)
            continue
        if access.category not in documents:
            documents[access.category] = _document(session, vault, customer_id, access.category)
        data = documents[access.category]
        fields = policy.fields_of([access], access.category) or ()
        if access.field is not None:
            shown[access.scope] = masked(data.get(access.field))
        else:
            filled = [f for f in fields if data.get(f) not in (None, "", {}, [])]
            shown[access.scope] = (
                "; ".join(f"{f.replace('_', ' ')}: {masked(data[f])}" for f in filled)
                or "nothing filled in yet"
            )
    return shown


def _document(session: Session, vault: Vault, customer_id: str, category: str) -> dict[str, Any]:
    try:
        return records.read_fields(
            session=session, vault=vault, customer_id=customer_id, category=category
        )
    except NotFound:
        return {}


def _history_words(session: Session, vault: Vault, customer_id: str) -> str:
    conn = session.connection()
    opened = history.opened_events(conn, vault, history.stamps_of(conn, customer_id))
    kept = sum(1 for _, stored in opened if policy.visible(stored.get("labels", ())))
    private = len(opened) - kept
    words = f"{kept} event{'' if kept == 1 else 's'}"
    if private:
        words += f" ({private} marked private, never shared)"
    return words
