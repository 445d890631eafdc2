"""The ``sql`` sink: a table of contacts and one of history events, in any
database SQLAlchemy reaches (tested on PostgreSQL and SQLite), created if
missing.

Contacts are keyed by the pairwise subject, one column per mapped field
(text, or JSON for a whole category or a structured field such as
``profile.postal_address``). Events are keyed by subject and event id,
the event as JSON beside its time and type.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    inspect,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from connectors.mapping import FieldMap
from connectors.sinks import Event

STRUCTURED = ("profile.postal_address",)
# On PostgreSQL, batches of at least this many rows are merged through COPY
# (copy_merge): bench/connector.py measured the sink's INSERT ... ON
# CONFLICT at 20% of a plain COPY's rows per second, under the goal of 25%.
COPY_FROM = 100


class SinkError(RuntimeError):
    """A sink that cannot work as configured (one line)."""


def _is_structured(store_field: str) -> bool:
    return "." not in store_field or store_field in STRUCTURED


class SQLSink:
    def __init__(
        self,
        url: str,
        mapping: FieldMap,
        *,
        contacts_table: str = "vrm_contacts",
        events_table: str = "vrm_history_events",
    ) -> None:
        self.engine: Engine = create_engine(url)
        self.mapping = mapping
        metadata = MetaData()
        columns = [
            Column(sink_field, JSON if _is_structured(store_field) else Text, nullable=True)
            for store_field, sink_field in mapping.fields.items()
        ]
        self.contacts = Table(
            contacts_table,
            metadata,
            Column("subject", String(64), primary_key=True),
            *columns,
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        self.events = Table(
            events_table,
            metadata,
            Column("subject", String(64), primary_key=True),
            Column("event_id", String(64), primary_key=True),
            Column("occurred_at", Text, nullable=True),
            Column("type", Text, nullable=True),
            Column("data", JSON, nullable=False),
            Column("updated_at", DateTime(timezone=True), nullable=False),
        )
        try:
            metadata.create_all(self.engine)
            self._check_columns()
        except BaseException:
            self.engine.dispose()
            raise
        self._fields = mapping.sink_fields

    def _check_columns(self) -> None:
        found = {c["name"] for c in inspect(self.engine).get_columns(self.contacts.name)}
        missing = [c.name for c in self.contacts.columns if c.name not in found]
        if missing:
            raise SinkError(
                f"table {self.contacts.name} lacks the mapped columns {', '.join(missing)}"
            )

    def _insert(self, table: Table) -> Any:
        name = self.engine.dialect.name
        if name == "postgresql":
            return postgresql.insert(table)
        if name == "sqlite":
            return sqlite.insert(table)
        raise SinkError(f"the sql sink upserts on PostgreSQL and SQLite, not {name}")

    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        self.upsert_many([(subject, fields)])

    def upsert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Several subjects' fields in one transaction. A subject named more
        than once is folded into one row first, later fields over earlier
        (the rows are all upserts, so that is what applying them in order
        gives, and one statement may not touch a row twice on PostgreSQL);
        then a statement per shape of fields."""
        now = datetime.now(UTC)
        folded: dict[str, dict[str, Any]] = {}
        for subject, fields in rows:
            known = {k: v for k, v in fields.items() if k in self._fields}
            folded.setdefault(subject, {}).update(known)
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for subject, known in folded.items():
            shape = tuple(sorted(known))
            by_shape.setdefault(shape, []).append({"subject": subject, **known, "updated_at": now})
        with self.engine.begin() as conn:
            for shape, values in by_shape.items():
                self._merge(conn, self.contacts, ["subject"], [*shape, "updated_at"], values)

    def _merge(
        self,
        conn: Any,
        table: Table,
        keys: list[str],
        columns: list[str],
        values: list[dict[str, Any]],
    ) -> None:
        """Insert ``values``, updating ``columns`` where the keys exist."""
        if self.engine.dialect.name == "postgresql" and len(values) >= COPY_FROM:
            copy_merge(conn, table.name, keys, columns, values)
            return
        insert = self._insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=keys, set_={name: insert.excluded[name] for name in columns}
        )
        conn.execute(statement, values)

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        named = [f for f in fields if f in self._fields]
        with self.engine.begin() as conn:
            if named:
                conn.execute(
                    self.contacts.update()
                    .where(self.contacts.c.subject == subject)
                    .values(dict.fromkeys(named) | {"updated_at": datetime.now(UTC)})
                )
            left = self._find(conn, subject)
            if left is not None and all(left[f] is None for f in self._fields):
                conn.execute(delete(self.contacts).where(self.contacts.c.subject == subject))

    def delete_subject(self, subject: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.contacts).where(self.contacts.c.subject == subject))
            conn.execute(delete(self.events).where(self.events.c.subject == subject))

    def _find(self, conn: Any, subject: str) -> dict[str, Any] | None:
        row = conn.execute(
            select(*[self.contacts.c[f] for f in self._fields]).where(
                self.contacts.c.subject == subject
            )
        ).first()
        return None if row is None else dict(row._mapping)

    def find(self, subject: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return self._find(conn, subject)

    def upsert_events(self, events: Sequence[Event]) -> None:
        if not events:
            return
        now = datetime.now(UTC)
        # The last of each id: one statement may not touch a row twice.
        last = {(e.subject, e.event_id): e for e in events}
        values = [
            {
                "subject": e.subject,
                "event_id": e.event_id,
                "occurred_at": e.data.get("occurred_at"),
                "type": e.data.get("type"),
                "data": dict(e.data),
                "updated_at": now,
            }
            for e in last.values()
        ]
        columns = ["occurred_at", "type", "data", "updated_at"]
        with self.engine.begin() as conn:
            self._merge(conn, self.events, ["subject", "event_id"], columns, values)

    def delete_events(self, subject: str, event_ids: Sequence[str] | None = None) -> None:
        where = self.events.c.subject == subject
        if event_ids is not None:
            where = and_(where, self.events.c.event_id.in_(list(event_ids)))
        with self.engine.begin() as conn:
            conn.execute(delete(self.events).where(where))

    def delete_events_of(self, subjects: Sequence[str]) -> None:
        """Every event of these subjects, a few hundred per statement."""
        with self.engine.begin() as conn:
            for start in range(0, len(subjects), 500):
                chunk = list(subjects[start : start + 500])
                conn.execute(delete(self.events).where(self.events.c.subject.in_(chunk)))

    def events_of(self, subject: str) -> list[Event]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.events.c.event_id, self.events.c.data)
                .where(self.events.c.subject == subject)
                .order_by(self.events.c.event_id)
            ).all()
        return [Event(subject, event_id, data) for event_id, data in rows]

    def subjects(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(self.contacts.c.subject)).scalars())

    def close(self) -> None:
        self.engine.dispose()


def copy_merge(
    conn: Any, table: str, keys: list[str], columns: list[str], values: list[dict[str, Any]]
) -> None:
    """``values`` into ``table`` on PostgreSQL: COPY into a temporary table
    of the same shape, then one ``INSERT ... SELECT ... ON CONFLICT DO
    UPDATE``, in the caller's transaction. The one place the sink writes
    SQL by hand (bench/connector.py says why)."""
    raw = conn.connection.driver_connection
    names = [*keys, *columns]
    quoted = ", ".join(_quote(n) for n in names)
    staging = _quote(f"vrm_staging_{table}")
    updates = ", ".join(f"{_quote(c)} = EXCLUDED.{_quote(c)}" for c in columns)
    with raw.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
            f"(LIKE {_quote(table)} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {staging} ({quoted}) FROM STDIN") as copy:
            for row in values:
                copy.write_row([_copyable(row.get(n)) for n in names])
        cursor.execute(
            f"INSERT INTO {_quote(table)} ({quoted}) SELECT {quoted} FROM {staging} "  # noqa: S608
            f"ON CONFLICT ({', '.join(_quote(k) for k in keys)}) DO UPDATE SET {updates}"
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _copyable(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value
