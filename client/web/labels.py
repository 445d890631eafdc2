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
    # Beside the box on an event, and, shorter, on each of its items.
    explained: str
    short: str


_NAMES = {"gift": "Gift", "not_for_me": "Not for me", "private": "Private"}
# What the label tells a vendor allowed to read the history, which sees it.
_SHARED_AS = {"gift": "a gift", "not_for_me": "not for you"}
_GIFT_NOT_HIDDEN = " It is not hidden: to keep it from vendors, mark it private."


def _words(label: str) -> LabelWords:
    if not policy.visible({label}):
        return LabelWords(
            label,
            _NAMES[label],
            "Vendors never see this, whatever you granted them; "
            "one that saw it before you marked it is told to delete it.",
            "vendors never see this",
        )
    shared_as = _SHARED_AS[label]
    return LabelWords(
        label,
        _NAMES[label],
        f"Shared, marked as {shared_as}: vendors you let read your history see it with "
        "this label, so that they do not take it for your own taste."
        + (_GIFT_NOT_HIDDEN if label == "gift" else ""),
        f"shared, marked as {shared_as}",
    )


LABELS = tuple(_words(v) for v in get_args(Label))
NAMES = {words.value: words.name for words in LABELS}
