"""The ``preferences`` category: contact and shopping preferences."""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from vrm.catalogue._types import Currency, LanguageTag, Strict, Text

Channel = Literal["email", "sms", "phone", "post", "push", "in_app"]
Frequency = Literal["never", "monthly", "weekly", "daily", "as_needed"]
FreeKey = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.-]{0,63}$")]
FreeValue = Annotated[str, StringConstraints(max_length=500)] | int | float | bool


class QuietHours(Strict):
    start: time
    end: time


class Communication(Strict):
    channels: list[Channel] = Field(default_factory=list, max_length=6)
    frequency: Frequency | None = None
    quiet_hours: QuietHours | None = None
    language: LanguageTag | None = None


class Budget(Strict):
    amount: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2)]
    currency: Currency


class Shopping(Strict):
    sizes: dict[Text, Text] = Field(default_factory=dict, max_length=50)
    brands: list[Text] = Field(default_factory=list, max_length=100)
    interests: list[Text] = Field(default_factory=list, max_length=100)
    budget: Budget | None = None


class Preferences(Strict):
    communication: Communication | None = None
    shopping: Shopping | None = None
    dietary: list[Text] = Field(default_factory=list, max_length=50)
    accessibility: list[Text] = Field(default_factory=list, max_length=50)
    free: dict[FreeKey, FreeValue] = Field(default_factory=dict, max_length=100)
