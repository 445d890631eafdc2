"""Ops applied in batches keep their order's meaning: a subject's events
deleted and put again in one batch end as the last ops say."""

from __future__ import annotations

from pathlib import Path

from connectors.destination import _apply_contacts, _apply_events
from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.files import FileSink


def _put(subject: str, event_id: str) -> dict[str, object]:
    return {"op": "put", "subject": subject, "event_id": event_id, "data": {"id": event_id}}


def _clear(subject: str) -> dict[str, object]:
    return {"op": "delete_all", "subject": subject}


def test_snapshots_in_one_batch(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, FieldMap(DEFAULT), "jsonl")
    sink.upsert_events([])
    _apply_events(sink, [_put("s1", "old")])
    _apply_events(
        sink,
        [_clear("s1"), _put("s1", "a"), _clear("s2"), _put("s2", "b"), _put("s2", "c")],
    )
    assert [e.event_id for e in sink.events_of("s1")] == ["a"]
    assert [e.event_id for e in sink.events_of("s2")] == ["b", "c"]


def test_a_delete_after_a_put_of_the_same_subject_wins(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, FieldMap(DEFAULT), "jsonl")
    _apply_events(sink, [_put("s1", "a"), _clear("s1"), _put("s1", "b")])
    assert [e.event_id for e in sink.events_of("s1")] == ["b"]
    _apply_events(sink, [_put("s1", "c"), {"op": "delete", "subject": "s1", "event_id": "c"}])
    assert [e.event_id for e in sink.events_of("s1")] == ["b"]


def test_a_field_deleted_after_an_upsert_stays_deleted(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, FieldMap(DEFAULT), "jsonl")
    _apply_contacts(
        sink,
        [
            {"op": "upsert", "subject": "s1", "fields": {"email": "a@x", "given_name": "A"}},
            {"op": "delete_fields", "subject": "s1", "fields": ["email"]},
            {"op": "upsert", "subject": "s2", "fields": {"email": "b@x"}},
        ],
    )
    found = sink.find("s1")
    assert found is not None
    assert (found["email"], found["given_name"]) == (None, "A")
    assert sink.subjects() == ["s1", "s2"]
