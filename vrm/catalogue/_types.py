"""Small shared field types for the catalogue schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]  # ISO 4217
LanguageTag = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)
]  # BCP 47, loosely
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]  # ISO 3166-1 alpha-2


class Strict(BaseModel):
    """Unknown members are refused: a typo must not be silently dropped.

    Nor is a float or decimal that is not finite held: pydantic would write
    it out as null, which the schema then refuses (issue 12, D1). Bodies are
    refused before this (vrm.strictjson); this keeps the store itself from
    holding one, whoever builds the model."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
