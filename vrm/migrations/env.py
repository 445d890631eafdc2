"""Alembic environment. The URL comes from the caller (vrm.migrate), never
from an ini file, so settings stay the single source."""

from __future__ import annotations

from alembic import context
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


def _run_with(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite needs batch mode to alter tables
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
