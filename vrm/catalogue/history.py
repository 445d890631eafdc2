"""The ``history`` category: events between the customer and a vendor.

Labels are the customer's own word on an event or item: ``private`` is never
shared with anyone; ``gift`` and ``not_for_me`` are shared with the label so
a vendor does not read them as the customer's own taste.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from vrm.catalogue._types import Currency, LongText, Strict, Text

EventType = Literal["purchase", "return", "support_case", "feedback", "complaint", "visit"]
Label = Literal["gift", "not_for_me", "private"]
Channel = Literal["online", "store", "phone", "app", "email", "other"]
Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]


class Item(Strict):
    name: Text
    sku: Text | None = None
    quantity: Annotated[int, Field(ge=1, le=100_000)] = 1
    amount: Money | None = None
    labels: set[Label] = Field(default_factory=set)


class HistoryEvent(Strict):
    """An event as the customer writes it."""

    vendor: Text
    type: EventType
    occurred_at: AwareDatetime
    items: list[Item] = Field(default_factory=list, max_length=500)
    amount: Money | None = None
    currency: Currency | None = None
    channel: Channel | None = None
    rating: Annotated[int, Field(ge=1, le=5)] | None = None
    notes: LongText | None = None
    labels: set[Label] = Field(default_factory=set)


def kept_private(labels: Collection[str]) -> bool:
    """Whether the customer labelled an event or item ``private``: theirs
    alone. The access policy (consent/policy.py, ``visible``) makes that
    "never shown to a vendor"; the store seals whether an event was ever
    written without it (vrm/history/models.py, ``StoredEvent.shared``)."""
    return "private" in labels
