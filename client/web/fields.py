"""The fields of a document's form (profile, preferences): how each is
shown, read back as typed, and turned into a JSON merge patch (RFC 7396)
for ``vrm.records.service.patch_document``, which validates the result
against the catalogue's schema. Nothing here decides what is valid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from client.web.forms import lines, nested
from consent.pages import FormError, form_fields, form_list

# The longest value a field's box takes; the schemas' own limits are
# tighter, and they are what the customer is told about.
_MAX_TEXT = 4000
_MAX_LINES = 40_000


@dataclass(frozen=True)
class Field:
    """One input. ``kind``: an input type (text, email, tel, date, time,
    number), ``select`` and ``checks`` (from ``options``), ``lines`` (a
    list, one a line) or ``pairs`` (a mapping, ``name: value`` a line)."""

    name: str
    label: str
    kind: str = "text"
    hint: str = ""
    options: Sequence[tuple[str, str]] = ()
    autocomplete: str = ""

    @property
    def id(self) -> str:
        return self.name.replace(".", "-")


@dataclass(frozen=True)
class Group:
    legend: str
    fields: Sequence[Field]
    # Set when the group is one object of the schema that is either whole
    # or absent (an address, quiet hours, a budget): all empty removes it.
    whole: str | None = None


@dataclass(frozen=True)
class DocumentForm:
    category: str
    groups: Sequence[Group]
    # Members of the document the form does not show; a merge patch keeps them.
    not_shown: Sequence[str] = field(default_factory=tuple)

    @property
    def fields(self) -> list[Field]:
        return [f for g in self.groups for f in g.fields]

    @property
    def labels(self) -> dict[str, str]:
        return {f.name: f.label for f in self.fields}


def _at(document: Mapping[str, Any], name: str) -> Any:
    node: Any = document
    for part in name.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def shown(form: DocumentForm, document: Mapping[str, Any]) -> dict[str, Any]:
    """Each field's value as the form shows it, from the stored document
    (which may no longer validate: shown as it is)."""
    values: dict[str, Any] = {}
    for f in form.fields:
        value = _at(document, f.name)
        if f.kind == "checks":
            values[f.name] = [str(v) for v in value] if isinstance(value, list) else []
        elif f.kind == "lines":
            values[f.name] = "\n".join(map(str, value)) if isinstance(value, list) else ""
        elif f.kind == "pairs":
            pairs = value.items() if isinstance(value, Mapping) else ()
            values[f.name] = "\n".join(f"{k}: {v}" for k, v in pairs)
        else:
            values[f.name] = "" if value is None else str(value)
    return values


def typed(form: DocumentForm, data: FormData) -> dict[str, Any]:
    """Each field's value as the customer typed it; a form no page of ours
    sends (a repeated field, a file, an overlong value) is a FormError."""
    limits = {
        f.name: _MAX_LINES if f.kind in ("lines", "pairs") else _MAX_TEXT
        for f in form.fields
        if f.kind != "checks"
    }
    values: dict[str, Any] = dict(form_fields(data, limits))
    for f in form.fields:
        if f.kind == "checks":
            values[f.name] = form_list(data, f.name, max_items=len(f.options), max_length=_MAX_TEXT)
    return values


def patch(
    form: DocumentForm, values: Mapping[str, Any], document: Mapping[str, Any]
) -> dict[str, Any]:
    """The merge patch that makes the document say what the form says:
    an empty field removes its member."""
    flat: dict[str, Any] = {}
    for f in form.fields:
        value = values[f.name]
        if f.kind == "checks":
            flat[f.name] = list(value)
        elif f.kind == "lines":
            flat[f.name] = lines(value)
        elif f.kind == "pairs":
            pairs = _pairs(f, value)
            before = _at(document, f.name)
            gone = (
                {k: None for k in before if k not in pairs} if isinstance(before, Mapping) else {}
            )
            flat[f.name] = {**gone, **pairs}
        else:
            flat[f.name] = value if value.strip() else None
    out = nested(flat)
    for group in form.groups:
        if group.whole and all(flat[f.name] is None for f in group.fields):
            *parents, leaf = group.whole.split(".")
            node = out
            for part in parents:
                node = node[part]
            node[leaf] = None
    return out


def _pairs(f: Field, text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for line in lines(text):
        name, colon, value = line.partition(":")
        if not colon:
            raise FormError(f'{f.label}: write each line as "name: value"')
        pairs[name.strip()] = value.strip()
    return pairs
