"""The sql sink on SQLite and on a real PostgreSQL: what the protocol
promises (fields upserted, deleted exactly, a contact with nothing left
gone, events by id)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks import Event
from connectors.sinks.sql import SinkError, SQLSink


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crm.db'}"
    return str(request.getfixturevalue("crm_postgres_url"))


@pytest.fixture
def sink(url: str) -> Iterator[SQLSink]:
    suffix = secrets.token_hex(4)
    s = SQLSink(
        url,
        FieldMap(DEFAULT),
        contacts_table=f"contacts_{suffix}",
        events_table=f"events_{suffix}",
    )
    yield s
    s.close()


def test_fields_are_upserted_and_others_kept(sink: SQLSink) -> None:
    sink.upsert("s1", {"email": "ana@example.org", "given_name": "Ana"})
    sink.upsert("s1", {"email": "ana@new.example"})
    found = sink.find("s1")
    assert found is not None
    assert found["email"] == "ana@new.example"
    assert found["given_name"] == "Ana"
    assert sink.find("s2") is None


def test_unmapped_fields_are_dropped(sink: SQLSink) -> None:
    sink.upsert("s1", {"email": "a@example.org", "shoe_size": "42"})
    found = sink.find("s1")
    assert found is not None
    assert "shoe_size" not in found


def test_deleting_fields_clears_exactly_those(sink: SQLSink) -> None:
    sink.upsert("s1", {"email": "a@example.org", "given_name": "Ana", "preferences": {"x": 1}})
    sink.delete_fields("s1", ["email"])
    found = sink.find("s1")
    assert found is not None
    assert found["email"] is None
    assert found["given_name"] == "Ana"
    assert found["preferences"] == {"x": 1}


def test_a_contact_with_nothing_left_is_deleted(sink: SQLSink) -> None:
    sink.upsert("s1", {"email": "a@example.org"})
    sink.upsert("s2", {"email": "b@example.org"})
    sink.delete_fields("s1", ["email"])
    assert sink.find("s1") is None
    assert sink.find("s2") is not None


def test_events_by_id_and_by_subject(sink: SQLSink) -> None:
    sink.upsert_events(
        [
            Event("s1", "e1", {"type": "purchase", "occurred_at": "2026-01-01T00:00:00Z"}),
            Event("s1", "e2", {"type": "return"}),
            Event("s2", "e3", {"type": "purchase"}),
        ]
    )
    sink.upsert_events([Event("s1", "e1", {"type": "purchase", "amount": "3.00"})])
    assert [e.event_id for e in sink.events_of("s1")] == ["e1", "e2"]
    assert sink.events_of("s1")[0].data["amount"] == "3.00"
    sink.delete_events("s1", ["e2"])
    assert [e.event_id for e in sink.events_of("s1")] == ["e1"]
    sink.delete_events("s1")
    assert sink.events_of("s1") == []
    assert [e.event_id for e in sink.events_of("s2")] == ["e3"]


def test_deleting_a_subject_takes_its_contact_and_events(sink: SQLSink) -> None:
    sink.upsert("s1", {"email": "a@example.org"})
    sink.upsert_events([Event("s1", "e1", {"type": "purchase"})])
    sink.delete_subject("s1")
    assert sink.find("s1") is None
    assert sink.events_of("s1") == []


def test_many_subjects_in_one_batch(sink: SQLSink) -> None:
    sink.upsert_many([(f"s{i}", {"email": f"{i}@example.org"}) for i in range(250)])
    assert len(sink.subjects()) == 250
    found = sink.find("s42")
    assert found is not None
    assert found["email"] == "42@example.org"


def test_a_table_without_the_mapped_columns_is_refused(url: str) -> None:
    table = f"contacts_{secrets.token_hex(4)}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (subject VARCHAR(64) PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(SinkError, match="lacks the mapped columns"):
        SQLSink(url, FieldMap(DEFAULT), contacts_table=table, events_table=table + "_e")


def test_a_mapping_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="both map to"):
        FieldMap({"profile.email": "email", "profile.phone": "email"})
    with pytest.raises(ValueError, match="not a profile or preferences field"):
        FieldMap({"history": "events"})


def test_a_tombstone_names_the_sink_fields_under_it_and_over_it() -> None:
    mapping = FieldMap(DEFAULT)
    assert mapping.to_delete(["profile.email"]) == ["email"]
    assert sorted(mapping.to_delete(["profile"])) == sorted(
        f for s, f in DEFAULT.items() if s.startswith("profile.")
    )
    # A field of a category mapped whole takes the whole document.
    assert mapping.to_delete(["preferences.shopping"]) == ["preferences"]
    assert mapping.to_delete(["history"]) == []


# Text COPY must escape: quotes, a backslash, a tab, a newline.
QUOTED = 'it\'s "ok"\\ \t\n'


def test_a_batch_naming_a_subject_twice_ends_as_applying_it_in_order(sink: SQLSink) -> None:
    # Large enough for PostgreSQL's COPY path; the same subject twice, in
    # two shapes, and an event put twice.
    rows: list[tuple[str, dict[str, object]]] = [
        (f"s{i}", {"email": f"{i}@example.org"}) for i in range(150)
    ]
    rows.insert(10, ("s7", {"email": "first@example.org", "given_name": "Seven"}))
    rows.append(("s7", {"email": "last@example.org"}))
    rows.append(("s8", {"preferences": {"dietary": ["vegan"], "quote": QUOTED}}))
    sink.upsert_many(rows)
    seven = sink.find("s7")
    assert seven is not None
    assert (seven["email"], seven["given_name"]) == ("last@example.org", "Seven")
    eight = sink.find("s8")
    assert eight is not None
    assert eight["preferences"] == {"dietary": ["vegan"], "quote": QUOTED}
    assert eight["email"] == "8@example.org"
    events = [Event(f"s{i}", "e", {"type": "purchase", "n": i}) for i in range(120)]
    events.append(Event("s3", "e", {"type": "return"}))
    sink.upsert_events(events)
    sink.upsert_events(events)  # again: the same end
    [three] = sink.events_of("s3")
    assert three.data == {"type": "return"}
    assert len(sink.subjects()) == 150
