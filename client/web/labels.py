"""The customer's labels on history events and items, in words, each
explained where it is set. Whether a vendor sees a labelled event is the
access policy's to say (consent.policy.visible); the words follow it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from consent import policy
from vrm.catalogue.history import Label


@dataclass(frozen=True)
class LabelWords:
    value: str
    name: str
    explained: str


_NAMES = {"gift": "Gift", "not_for_me": "Not for me", "private": "Private"}
# What a vendor allowed to read the history learns from a label it sees.
_SHARED_AS = {
    "gift": (
        "a gift, so that they do not take it for your own taste. It is not hidden: "
        "to keep it from vendors, mark it private"
    ),
    "not_for_me": "not for you, so that they do not take it for your own taste",
}


def _explained(label: str) -> str:
    if not policy.visible({label}):
        return (
            "Vendors never see this, whatever you granted them; "
            "one that saw it before you marked it is told to delete it."
        )
    return f"Shared, marked as {_SHARED_AS[label]}: vendors you let read your history see it."


LABELS = tuple(LabelWords(v, _NAMES[v], _explained(v)) for v in get_args(Label))
NAMES = {words.value: words.name for words in LABELS}
