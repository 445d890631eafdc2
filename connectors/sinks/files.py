"""The ``csv`` and ``jsonl`` sinks: files a desktop CRM imports
(RegionSoft, Highrise-style imports), in a folder: ``contacts`` and
``history_events``, one row or line per contact or event.

The files are read whole when the sink opens and rewritten whole, each
through a temporary file in the same folder that is synced to disk and then
renamed over the old one, when :meth:`FileSink.commit` is called (after
each batch the connector applies). A crash leaves the old file or the new
one, never half a file.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from connectors.mapping import FieldMap
from connectors.sinks import Event


class FileSink:
    def __init__(self, folder: Path, mapping: FieldMap, kind: str) -> None:
        if kind not in ("csv", "jsonl"):
            raise ValueError(kind)
        self.folder = folder
        self.kind = kind
        self.fields = mapping.sink_fields
        folder.mkdir(parents=True, exist_ok=True)
        self.contacts_path = folder / f"contacts.{kind}"
        self.events_path = folder / f"history_events.{kind}"
        self.contacts: dict[str, dict[str, Any]] = {}
        self.events: dict[tuple[str, str], dict[str, Any]] = {}
        self._dirty = False
        self._read()

    # -- files ----------------------------------------------------------------

    def _read(self) -> None:
        for row in self._rows(self.contacts_path):
            subject = str(row.pop("subject"))
            self.contacts[subject] = {f: row.get(f) for f in self.fields}
        for row in self._rows(self.events_path):
            self.events[(str(row["subject"]), str(row["event_id"]))] = row["data"]

    def _rows(self, path: Path) -> list[dict[str, Any]]:
        if not path.exists():
            return []
        with path.open(newline="", encoding="utf-8") as f:
            if self.kind == "jsonl":
                return [json.loads(line) for line in f if line.strip()]
            rows = []
            for row in csv.DictReader(f):
                rows.append({k: _cell_in(v) for k, v in row.items()})
            return rows

    def _write(self, path: Path, header: Sequence[str], rows: list[dict[str, Any]]) -> None:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=self.folder)
        try:
            with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
                if self.kind == "jsonl":
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                else:
                    writer = csv.DictWriter(f, fieldnames=list(header))
                    writer.writeheader()
                    for row in rows:
                        writer.writerow({k: _cell_out(row.get(k)) for k in header})
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def commit(self) -> None:
        """Rewrite both files, if anything changed since the last commit."""
        if not self._dirty:
            return
        contacts = [{"subject": s, **fields} for s, fields in sorted(self.contacts.items())]
        self._write(self.contacts_path, ["subject", *self.fields], contacts)
        events = [
            {
                "subject": subject,
                "event_id": event_id,
                "occurred_at": data.get("occurred_at"),
                "type": data.get("type"),
                "data": data,
            }
            for (subject, event_id), data in sorted(self.events.items())
        ]
        header = ["subject", "event_id", "occurred_at", "type", "data"]
        self._write(self.events_path, header, events)
        self._dirty = False

    # -- the protocol ---------------------------------------------------------

    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        held = self.contacts.setdefault(subject, dict.fromkeys(self.fields))
        held.update({k: v for k, v in fields.items() if k in self.fields})
        self._dirty = True

    def upsert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        for subject, fields in rows:
            self.upsert(subject, fields)

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        held = self.contacts.get(subject)
        if held is None:
            return
        for name in fields:
            if name in held:
                held[name] = None
        if all(v is None for v in held.values()):
            del self.contacts[subject]
        self._dirty = True

    def delete_subject(self, subject: str) -> None:
        self.contacts.pop(subject, None)
        self.delete_events(subject)

    def find(self, subject: str) -> dict[str, Any] | None:
        held = self.contacts.get(subject)
        return None if held is None else dict(held)

    def subjects(self) -> list[str]:
        return sorted(self.contacts)

    def upsert_events(self, events: Sequence[Event]) -> None:
        for event in events:
            self.events[(event.subject, event.event_id)] = dict(event.data)
        self._dirty = True

    def delete_events(self, subject: str, event_ids: Sequence[str] | None = None) -> None:
        if event_ids is None:
            doomed = [key for key in self.events if key[0] == subject]
        else:
            doomed = [(subject, event_id) for event_id in event_ids]
        for key in doomed:
            self.events.pop(key, None)
        self._dirty = True

    def events_of(self, subject: str) -> list[Event]:
        return [
            Event(s, event_id, data)
            for (s, event_id), data in sorted(self.events.items())
            if s == subject
        ]

    def close(self) -> None:
        self.commit()


def _cell_out(value: Any) -> str:
    """A CSV cell: text as it is, anything else as JSON, nothing as empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _cell_in(value: str | None) -> Any:
    if value is None or value == "":
        return None
    if value[0] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
