"""From a form to what a service takes, and from a service's refusal back
to words beside the fields. What is valid is never decided here: the
services and the catalogue's schemas decide, and their errors are shown."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from vrm.errors import VRMError

# A pattern's regular expression means nothing to a customer.
_WORDS_BY_CODE = {
    "string_pattern_mismatch": "is not in the expected format",
    "missing": "is needed",
}


def errors_of(exc: ValidationError | VRMError) -> list[dict[str, Any]]:
    """``field``, ``message`` and ``code`` of each error: pydantic's own
    (a request model the API validates with), or a service's
    ``ValidationFailed`` (which never carries the submitted values)."""
    if isinstance(exc, ValidationError):
        return [
            {"field": ".".join(map(str, e["loc"])), "message": e["msg"], "code": e["type"]}
            for e in exc.errors()
        ]
    found: list[dict[str, Any]] = exc.extra.get("errors", [])
    return found


def field_messages(
    errors: Iterable[Mapping[str, Any]], labels: Mapping[str, str]
) -> dict[str, str]:
    """One message per form field, keyed by the field's name. An error is
    put on the longest field name its location starts with (an error on
    ``items.2.name`` goes to ``items.2.name``, one on ``shopping.brands.3``
    to ``shopping.brands``); one that fits no field goes under ``""``."""
    messages: dict[str, str] = {}
    for error in errors:
        where = str(error.get("field", ""))
        name = max(
            (n for n in labels if where == n or where.startswith(n + ".")),
            key=len,
            default="",
        )
        words = _WORDS_BY_CODE.get(str(error.get("code")), str(error.get("message", "")))
        label = labels.get(name, "The form")
        messages.setdefault(name, f"{label}: {words}.")
    return messages


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` as ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for name, value in flat.items():
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def lines(text: str) -> list[str]:
    """A textarea holding one value a line, blank lines left out."""
    return [line for line in (raw.strip() for raw in text.splitlines()) if line]
