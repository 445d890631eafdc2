"""The ``profile`` category: who the customer is and how to reach them."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints

from vrm.catalogue._types import Country, LanguageTag, Strict, Text

Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()\-.]{4,32}$")]


class PostalAddress(Strict):
    street_address: Text | None = None
    locality: Text | None = None
    region: Text | None = None
    postal_code: Annotated[str, StringConstraints(max_length=16)] | None = None
    country: Country | None = None


class Profile(Strict):
    given_name: Text | None = None
    family_name: Text | None = None
    email: EmailStr | None = Field(default=None, description="Contact email shared with vendors")
    phone: Phone | None = None
    postal_address: PostalAddress | None = None
    birth_date: date | None = None
    language: LanguageTag | None = None
