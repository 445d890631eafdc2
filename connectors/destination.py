"""A sink as a dlt destination: each batch of ops (connectors/ops.py)
applied to the sink in order.

dlt calls the destination once per batch of one table (an Arrow record
batch of :func:`connectors.ops.tables_of`'s rows), in the order the ops
were extracted, one batch at a time: a sink is not written for calls from
two threads at once (the file sinks rewrite their files from dicts the
other table's batch would be changing). Runs of upserts (or of puts) go to the sink together;
every other op is applied where it stands, so a field deleted after an
upsert stays deleted. A batch applied and then applied again (a run killed
mid-load, resumed by dlt) leaves the sink as once: upserts and deletes are
idempotent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dlt

from connectors.ops import CONTACTS, EVENTS, ops_from
from connectors.sinks import Event, Sink

BATCH = 1000


def _apply_contacts(sink: Sink, ops: Sequence[Mapping[str, Any]]) -> None:
    run: list[tuple[str, Mapping[str, Any]]] = []

    def flush() -> None:
        if not run:
            return
        many = getattr(sink, "upsert_many", None)
        if many is not None:
            many(list(run))
        else:
            for subject, fields in run:
                sink.upsert(subject, fields)
        run.clear()

    for op in ops:
        if op["op"] == "upsert":
            run.append((op["subject"], op["fields"]))
            continue
        flush()
        if op["op"] == "delete_fields":
            sink.delete_fields(op["subject"], list(op["fields"]))
    flush()


def _apply_events(sink: Sink, ops: Sequence[Mapping[str, Any]]) -> None:
    # A run: the subjects whose events all go, then the events put. A
    # snapshot is "delete all of s, then put s's events", so a first sync's
    # batch is one run: one delete for all its subjects, one upsert for all
    # their events. A delete of a subject whose event the run already puts
    # ends the run first, so nothing put is deleted after.
    cleared: list[str] = []
    put: list[Event] = []
    put_subjects: set[str] = set()

    def flush() -> None:
        if cleared:
            many = getattr(sink, "delete_events_of", None)
            if many is not None:
                many(list(cleared))
            else:
                for subject in cleared:
                    sink.delete_events(subject)
        if put:
            sink.upsert_events(list(put))
        cleared.clear()
        put.clear()
        put_subjects.clear()

    for op in ops:
        kind, subject = op["op"], op["subject"]
        if kind == "put":
            put.append(Event(subject, op["event_id"], op["data"]))
            put_subjects.add(subject)
        elif kind == "delete_all":
            if subject in put_subjects:
                flush()
            cleared.append(subject)
        elif kind == "delete":
            flush()
            sink.delete_events(subject, [op["event_id"]])
    flush()


def to_sink(sink: Sink, on_applied: Callable[[str, int], None] | None = None) -> Any:
    """A dlt destination that applies ops to ``sink``."""

    @dlt.destination(
        name="vrm_sink",
        batch_size=BATCH,
        loader_file_format="parquet",
        loader_parallelism_strategy="sequential",
        naming_convention="direct",
        skip_dlt_columns_and_tables=True,
        max_table_nesting=0,
    )
    def apply(items: Any, table: Any) -> None:
        name = table["name"]
        if name == CONTACTS:
            _apply_contacts(sink, ops_from(name, items))
        elif name == EVENTS:
            _apply_events(sink, ops_from(name, items))
        else:
            return
        commit = getattr(sink, "commit", None)
        if commit is not None:  # the file sinks write their files whole
            commit()
        if on_applied is not None:
            on_applied(name, len(items))

    return apply()
