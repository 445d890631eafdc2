"""Alembic environment. The URL comes from the caller (vrm.migrate), never
from an ini file, so settings stay the single source."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import vrm.models  # noqa: F401 - registers every table on SQLModel.metadata
from vrm.db import make_engine
from vrm.settings import Settings

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_with(connection)
        return
    engine = make_engine(Settings(database_url=config.get_main_option("sqlalchemy.url") or ""))
    with engine.connect() as conn:
        _run_with(conn)
    engine.dispose()


def _run_with(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table to alter it (copy, drop, rename); with
        # foreign keys on, dropping the old copy would cascade into every
        # child table (a downgrade once deleted every token of every grant).
        # SQLite ignores this pragma inside a transaction, so it goes first.
        _pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        _migrate(connection)
    finally:
        if sqlite:
            _pragma(connection, "PRAGMA foreign_keys=ON")


def _pragma(connection: Connection, statement: str) -> None:
    # Executing autobegins a transaction; end the one we began, or Alembic
    # would run inside it without committing.
    ours = not connection.in_transaction()
    connection.exec_driver_sql(statement)
    if ours:
        connection.commit()


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
