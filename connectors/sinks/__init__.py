"""Where the connector puts what it is allowed to hold.

Every sink answers one small protocol, :class:`Sink`: upsert a subject's
fields, delete some of them, delete a subject, find one; and, for the
customer's history, upsert and delete events. Subjects are the pairwise
subjects the store gives the vendor: the only name a sink keys a contact
by. Fields are the sink's own (after the mapping, connectors/mapping.py).
A contact left with no field is deleted: a sink holds nothing the store no
longer grants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Event:
    """One history event of a subject, as the store's feed sent it."""

    subject: str
    event_id: str
    data: Mapping[str, Any]


class Sink(Protocol):
    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        """Set these fields of the subject's contact, creating it if need
        be; fields not named keep their values."""

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        """Clear these fields of the subject's contact; delete the contact
        if nothing is left."""

    def delete_subject(self, subject: str) -> None:
        """Delete the subject's contact and all its events."""

    def find(self, subject: str) -> dict[str, Any] | None:
        """The subject's contact, its fields by name, or None."""

    def upsert_events(self, events: Sequence[Event]) -> None:
        """Store these events, replacing any with the same id."""

    def delete_events(self, subject: str, event_ids: Sequence[str] | None = None) -> None:
        """Delete these events of the subject (all of them when None)."""

    def events_of(self, subject: str) -> list[Event]:
        """The subject's events, by id."""

    def subjects(self) -> list[str]:
        """Every subject the sink holds a contact of."""

    def close(self) -> None:
        """Release what the sink holds (connections, files)."""


class NoHistory:
    """For the sinks of CRMs with no place for a customer's purchase
    history (the CRMs' contacts): they hold no events, as a field the
    mapping does not name is dropped."""

    def upsert_events(self, events: Sequence[Event]) -> None:
        return None

    def delete_events(self, subject: str, event_ids: Sequence[str] | None = None) -> None:
        return None

    def events_of(self, subject: str) -> list[Event]:
        return []
