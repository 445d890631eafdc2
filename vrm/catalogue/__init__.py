"""The closed catalogue of data categories.

Each category is a module here with a pydantic schema and named fields; scopes
(``profile.email:read``) address a category or one of its fields. Add a
category by adding a module and registering it in :data:`CATEGORIES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from pydantic import BaseModel

from vrm.catalogue.history import HistoryEvent
from vrm.catalogue.preferences import Preferences
from vrm.catalogue.profile import Profile

Kind = Literal["document", "events"]


@dataclass(frozen=True)
class Category:
    name: str
    kind: Kind
    schema: type[BaseModel]
    description: str

    @cached_property
    def fields(self) -> tuple[str, ...]:
        # Asked on every read of a grant's fields (consent/policy.py).
        return tuple(self.schema.model_fields)


CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category("profile", "document", Profile, "Who you are and how to reach you"),
        Category("preferences", "document", Preferences, "What you like and how to be contacted"),
        Category("history", "events", HistoryEvent, "Purchases and other dealings with vendors"),
    )
}

DOCUMENT_CATEGORIES = tuple(n for n, c in CATEGORIES.items() if c.kind == "document")

# Internal category for account data (the login email); never granted.
ACCOUNT = "account"


def field_key(category: str, field: str) -> str:
    """The name of the data key sealing one field of a document category
    (``profile.email``), derived from its category's: a grant of that field
    alone escrows that key alone (vrm/records/sealing.py, docs/keys.md)."""
    return f"{category}.{field}"


# The data keys each customer has, wrapped by their root key: the
# account's and one per category. Each field of a document category has a
# key derived from its category's (vrm/keys/service.py, field_key_of).
DATA_KEYS = (ACCOUNT, *CATEGORIES)

__all__ = [
    "ACCOUNT",
    "CATEGORIES",
    "DATA_KEYS",
    "DOCUMENT_CATEGORIES",
    "Category",
    "field_key",
]
