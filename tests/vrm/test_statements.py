"""Statements on the driver's cursor (vrm/storage/statements.py) read and write exactly
what SQLAlchemy would, inside the transaction of the connection given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, bindparam, insert, select, update

from tests.conftest import Person
from vrm.storage.statements import Statement
from vrm.vendor_api.models import AccessEvent

TABLE = AccessEvent.__table__  # type: ignore[attr-defined]
INSERT = Statement(insert(TABLE))
BY_CUSTOMER = Statement(select(TABLE).where(TABLE.c.customer_id == bindparam("c")))
MARK = Statement(
    update(TABLE).where(TABLE.c.customer_id == bindparam("c")).values(not_modified=True)
)


def _row(customer_id: str, n: int) -> dict[str, object]:
    return {
        "id": f"event{n:027d}",
        # Not UTC on the way in: stored and read back as the same instant in UTC.
        "at": datetime(2026, 11, 23, 15, 0, n, 123456, tzinfo=timezone(timedelta(hours=2))),
        "vendor_id": "vendor-1",
        "grant_id": "g" * 32,
        "subject": "pairwise-subject",
        "customer_id": customer_id,
        "purpose": "dpv:ServiceProvision",
        "categories": ["profile", "história"],
        "fields": ["profile.email", "history"],
        "not_modified": False,
        "action": "read",
    }


def _engine(app: FastAPI) -> Engine:
    engine: Engine = app.state.engine
    return engine


def test_rows_read_back_as_sqlalchemy_reads_them(app: FastAPI, ana: Person) -> None:
    engine = _engine(app)
    with engine.connect() as conn:
        INSERT.execute_many(conn, [_row(ana.id, 1), _row(ana.id, 2)])
        INSERT.execute(conn, _row(ana.id, 3))
        conn.commit()
    with engine.connect() as conn:
        ours = BY_CUSTOMER.rows(conn, {"c": ana.id})
        theirs = conn.execute(select(TABLE).where(TABLE.c.customer_id == ana.id)).all()
        first = BY_CUSTOMER.mapping(conn, {"c": ana.id})
    assert sorted(ours) == sorted(tuple(r) for r in theirs)
    assert len(ours) == 3
    assert first is not None
    assert first["at"] in {datetime(2026, 11, 23, 13, 0, n, 123456, tzinfo=UTC) for n in (1, 2, 3)}
    assert first["at"].tzinfo is not None
    assert first["categories"] == ["profile", "história"]
    assert first["not_modified"] is False


def test_statements_run_in_the_connections_transaction(app: FastAPI, ana: Person) -> None:
    engine = _engine(app)
    with engine.connect() as conn:
        INSERT.execute(conn, _row(ana.id, 1))
        assert len(BY_CUSTOMER.rows(conn, {"c": ana.id})) == 1
        conn.rollback()
        assert BY_CUSTOMER.first(conn, {"c": ana.id}) is None
        INSERT.execute(conn, _row(ana.id, 2))
        # Closed without a commit: rolled back.
    with engine.connect() as conn:
        assert BY_CUSTOMER.rows(conn, {"c": ana.id}) == []
        INSERT.execute(conn, _row(ana.id, 3))
        assert MARK.execute(conn, {"c": ana.id}) == 1
        conn.commit()
    with engine.connect() as conn:
        row = BY_CUSTOMER.mapping(conn, {"c": ana.id})
    assert row is not None
    assert row["id"] == _row(ana.id, 3)["id"]
    assert row["not_modified"] is True


def test_expanding_parameters_are_refused(app: FastAPI) -> None:
    statement = Statement(select(TABLE).where(TABLE.c.id.in_(bindparam("ids", expanding=True))))
    with _engine(app).connect() as conn, pytest.raises(ValueError, match="expanding"):
        statement.rows(conn, {"ids": ["a"]})
