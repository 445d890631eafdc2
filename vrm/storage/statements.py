"""Hot statements run on the database driver's own cursor.

For the calls vendors make many times a second (reading data, the token
endpoint) SQLAlchemy's per-execution work (the compiled cache lookup,
execution context, result metadata, row objects) cost several times what
the database did (docs/performance.md#the-drivers-cursor-and-decoding).
A :class:`Statement` is a Core statement compiled by SQLAlchemy once
per dialect; running it hands the SQL string and parameters to the driver's
cursor and applies the column types' own bind and result processors (so a
UTC datetime or a JSON column reads back exactly as through SQLAlchemy).

It runs inside the transaction of the :class:`~sqlalchemy.Connection` it is
given, which it begins if needed, so ``conn.commit()`` commits it and closing
the connection rolls it back. The driver's errors are raised as SQLAlchemy
raises them (``IntegrityError`` and so on). Only statements without
expanding parameters (``IN`` lists) are supported.

A statement that writes (an insert, update or delete) checks, when it runs
inside a group commit, that the group's work declared its table
(vrm/storage/transaction.py): the driver's cursor bypasses SQLAlchemy's
events, which check every other statement of the group.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Connection,
    Dialect,
    Select,
    Table,
    any_,
    bindparam,
    insert,
    text,
)
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement, sqltypes
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase

from vrm.storage.batches import batches
from vrm.storage.transaction import check_write


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order, for qmark drivers
    defaults: dict[str, Any]  # values given in the statement itself
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]  # names needing conversion
    # (index, processor) of the result columns whose type converts values
    results: tuple[tuple[int, Callable[[Any], Any]], ...]
    columns: tuple[str, ...]
    # For qmark drivers (SQLite): the parameter tuple in one call, and the
    # (index, processor) of the values needing conversion.
    getter: Callable[[Mapping[str, Any]], Any] | None = field(default=None, compare=False)
    converts: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
    # The result processors of column ranges, by (start, stop): see
    # Statement.converted.
    parts: dict[tuple[int, int], tuple[tuple[int, Callable[[Any], Any]], ...]] = field(
        default_factory=dict, compare=False
    )


class Statement:
    def __init__(self, statement: ClauseElement, *, binary: bool = False) -> None:
        """``binary``: parameters go to psycopg in its binary format, which
        writes a list of a thousand values (an array) in a fraction of the
        time its text format takes, in Python, and which PostgreSQL reads
        without parsing. Other drivers take them as they are."""
        self.statement = statement
        self.binary = binary
        # The table an insert, update or delete writes.
        table = statement.table if isinstance(statement, UpdateBase) else None
        self.writes: Table | None = table if isinstance(table, Table) else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # noqa: S101 - Core statements only
        binds: list[tuple[str, Callable[[Any], Any]]] = []
        defaults: dict[str, Any] = {}
        for bind, name in compiled.bind_names.items():
            if bind.expanding:
                raise ValueError("expanding parameters are not supported")
            if not bind.required:  # a value in the statement, e.g. .values(x=1)
                defaults[name] = bind.effective_value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds.append((name, process))
        results: list[tuple[int, Callable[[Any], Any]]] = []
        columns: list[str] = []
        if isinstance(self.statement, Select):
            for column in self.statement.selected_columns:
                impl = column.type.dialect_impl(dialect)
                process = impl.result_processor(dialect, None)
                if process is not None:
                    results.append((len(columns), process))
                columns.append(str(column.key))
        sql = compiled.string
        if self.binary and dialect.paramstyle == "pyformat":
            for name in compiled.bind_names.values():
                sql = sql.replace(f"%({name})s", f"%({name})b")
        positional = tuple(compiled.positiontup or ()) if compiled.positional else None
        getter = None
        converts: tuple[tuple[int, Callable[[Any], Any]], ...] = ()
        if positional is not None:
            by_name = dict(binds)
            converts = tuple((i, by_name[n]) for i, n in enumerate(positional) if n in by_name)
            getter = _getter(positional)
        found = _Compiled(
            sql,
            positional,
            defaults,
            tuple(binds),
            tuple(results),
            tuple(columns),
            getter,
            converts,
        )
        self._by_dialect[dialect.name] = found
        return found

    @property
    def columns(self) -> Sequence[str]:
        """Result column names (after a first run on any dialect)."""
        return next(iter(self._by_dialect.values())).columns

    def _args(self, compiled: _Compiled, params: Mapping[str, Any]) -> Any:
        if compiled.getter is not None:
            if compiled.defaults:
                params = {**compiled.defaults, **params}
            values = compiled.getter(params)
            if not compiled.converts:
                return values
            converted = list(values)
            for at, process in compiled.converts:
                converted[at] = process(converted[at])
            return converted
        # Named parameters (psycopg): the dict, its values converted.
        if compiled.defaults:
            params = {**compiled.defaults, **params}
        if compiled.binds:
            params = dict(params)
            for name, process in compiled.binds:
                if name in params:
                    params[name] = process(params[name])
        return params

    def _cursor(self, conn: Connection) -> Any:
        if not conn.in_transaction():
            conn.begin()
        return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, _Compiled]:
        compiled = self._compiled(conn.dialect)
        cursor = self._cursor(conn)
        try:
            cursor.execute(compiled.sql, self._args(compiled, params))
        except conn.dialect.loaded_dbapi.Error as exc:
            cursor.close()
            raise _wrapped(conn, compiled, exc) from exc
        return cursor, compiled

    def execute_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement that returns no rows once for each of ``rows``."""
        if self.writes is not None:
            check_write(conn.info, self.writes)
        compiled = self._compiled(conn.dialect)
        cursor = self._cursor(conn)
        try:
            cursor.executemany(compiled.sql, [self._args(compiled, r) for r in rows])
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, compiled, exc) from exc
        finally:
            cursor.close()

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; the rows it changed."""
        if self.writes is not None:
            check_write(conn.info, self.writes)
        cursor, _ = self._run(conn, params)
        count: int = cursor.rowcount
        cursor.close()
        return count

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor, compiled = self._run(conn, params)
        fetched = cursor.fetchall()
        cursor.close()
        return [_processed(row, compiled.results) for row in fetched]

    def first(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cursor, compiled = self._run(conn, params)
        row = cursor.fetchone()
        cursor.close()
        return _processed(row, compiled.results) if row is not None else None

    def first_raw(self, conn: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row as the driver returned it, before the column types'
        result processors (see :meth:`processed`)."""
        cursor, _ = self._run(conn, params)
        row: tuple[Any, ...] | None = cursor.fetchone()
        cursor.close()
        return row

    def processed(self, conn: Connection, row: Sequence[Any]) -> dict[str, Any]:
        """A row from :meth:`first_raw` as :meth:`mapping` returns it."""
        compiled = self._compiled(conn.dialect)
        return dict(zip(compiled.columns, _processed(row, compiled.results), strict=True))

    def converted(
        self, conn: Connection, row: Sequence[Any], start: int, stop: int
    ) -> tuple[Any, ...]:
        """Values ``start`` to ``stop`` of a row from :meth:`first_raw`, as
        :meth:`first` returns them (for a join whose tables' parts are
        decoded apart)."""
        compiled = self._compiled(conn.dialect)
        part = compiled.parts.get((start, stop))
        if part is None:
            part = compiled.parts[start, stop] = tuple(
                (at - start, process) for at, process in compiled.results if start <= at < stop
            )
        return _processed(row[start:stop], part)

    def mapping(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row as a dict of column name to value, or None."""
        row = self.first_raw(conn, params)
        return self.processed(conn, row) if row is not None else None


class ManyRows:
    """An insert of many rows into one table. On PostgreSQL one statement
    whatever their number, its rows given as one JSON array that
    ``json_to_recordset`` reads (a page of the feed records a thousand
    reads: ``executemany`` sent a thousand statements, and one array per
    column cost more to bind, in psycopg's Python, than the insert itself).
    Elsewhere, ``executemany``.

    Each row names every column, with values JSON can hold (strings,
    numbers, booleans, datetimes, and any value of a JSON column). Values go
    through the column types' bind processors, a JSON column's through the
    engine's serializer, so the rows, and the JSON columns' text, are what
    SQLAlchemy would store (tests/vrm/test_statements.py)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._each = Statement(insert(table))
        self._by_dialect: dict[str, tuple[Statement, tuple[_Value, ...]]] = {}

    def _for(self, dialect: Dialect) -> tuple[Statement, tuple[_Value, ...]]:
        found = self._by_dialect.get(dialect.name)
        if found is not None:
            return found
        quote = dialect.identifier_preparer.quote
        declared: list[str] = []
        selected: list[str] = []
        values: list[_Value] = []
        for column in self.table.columns:
            name = quote(column.name)
            kind = column.type.compile(dialect)
            if isinstance(column.type, sqltypes.JSON):
                # Its text as the engine's serializer writes it: json keeps it.
                declared.append(f"{name} text")
                selected.append(f"CAST(r.{name} AS {kind})")
                values.append((column.key, column.name, _json_of(column.type, dialect)))
            else:
                declared.append(f"{name} {kind}")
                selected.append(f"r.{name}")
                impl = column.type.dialect_impl(dialect)
                values.append((column.key, column.name, impl.bind_processor(dialect)))
        statement = Statement(
            text(
                # Names from the table's metadata, quoted; the values are bound.
                f"INSERT INTO {quote(self.table.name)} "  # noqa: S608
                f"({', '.join(quote(c.name) for c in self.table.columns)}) "
                f"SELECT {', '.join(selected)} "
                f"FROM json_to_recordset(CAST(:rows AS json)) AS r({', '.join(declared)})"
            )
        )
        found = self._by_dialect[dialect.name] = (statement, tuple(values))
        return found

    def insert(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        check_write(conn.info, self.table)
        if conn.dialect.name != "postgresql":
            self._each.execute_many(conn, rows)
            return
        statement, values = self._for(conn.dialect)
        converted = [
            {
                name: row[key] if process is None else process(row[key])
                for key, name, process in values
            }
            for row in rows
        ]
        statement.execute(conn, {"rows": orjson.dumps(converted).decode()})


class ManyKeys:
    """A select of the rows whose ``column`` holds one of many keys (a page
    of the feed reads a thousand customers' documents, histories and
    grants). On PostgreSQL one statement whatever their number, on the
    driver's cursor, the keys as one array in binary (``= ANY``): an
    ``IN`` list of hundreds of parameters cost PostgreSQL more to parse and
    plan than to run, and SQLAlchemy more to expand and to make rows of
    than the driver took. Elsewhere, ``IN`` lists of at most
    :data:`vrm.storage.batches.BATCH` keys. Rows come back as plain tuples,
    in no order, each value as its column type reads it."""

    def __init__(self, statement: Select[*tuple[Any, ...]], column: Any) -> None:
        self._any = Statement(
            statement.where(column == any_(bindparam("keys", type_=ARRAY(column.type)))),
            binary=True,
        )
        self._in = statement.where(column.in_(bindparam("keys", expanding=True)))

    def rows(self, conn: Connection, keys: Iterable[str]) -> list[tuple[Any, ...]]:
        if conn.dialect.name == "postgresql":
            wanted = sorted(set(keys))
            return self._any.rows(conn, {"keys": wanted}) if wanted else []
        found: list[tuple[Any, ...]] = []
        for batch in batches(keys):
            found += [tuple(row) for row in conn.execute(self._in, {"keys": batch})]
        return found


# A column's key, its name, and what turns its value into a JSON value
# json_to_recordset reads as the column's type (None: the value as it is).
_Value = tuple[str, str, Callable[[Any], Any] | None]


def _json_of(kind: sqltypes.JSON, dialect: Dialect) -> Callable[[Any], str | None]:
    serializer: Callable[[Any], str] = dialect._json_serializer or json.dumps
    # Lists of strings written already: a page's rows mostly repeat a few
    # (the categories and fields a grant reads). Only strings, whose equal
    # tuples write equal JSON (1, 1.0 and True are equal, and do not).
    written: dict[tuple[str, ...], str] = {}

    def process(value: Any) -> str | None:
        if value is None and kind.none_as_null:
            return None
        if type(value) is not list or not all(type(item) is str for item in value):
            return serializer(value)
        key = tuple(value)
        found = written.get(key)
        if found is None:
            if len(written) >= 1024:
                written.clear()
            found = written[key] = serializer(value)
        return found

    return process


def _getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of ``names``, in order, from a dict of parameters."""
    if len(names) > 1:
        return itemgetter(*names)
    if names:
        name = names[0]
        return lambda params: (params[name],)
    return lambda params: ()


def _wrapped(conn: Connection, compiled: _Compiled, exc: Exception) -> StatementError:
    """The driver's error as SQLAlchemy raises it (IntegrityError and so on),
    without the parameters, which may be token or secret hashes."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    return DBAPIError.instance(
        compiled.sql, None, exc, dbapi_error, hide_parameters=True, dialect=conn.dialect
    )


def _processed(
    row: Sequence[Any], processors: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    """The row with each value converted by its column type (None stays
    None); only the columns that convert are visited."""
    values = list(row)
    for at, process in processors:
        value = values[at]
        if value is not None:
            values[at] = process(value)
    return tuple(values)
