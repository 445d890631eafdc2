"""Statements on the driver's cursor (vrm/storage/statements.py) read and write exactly
what SQLAlchemy would, inside the transaction of the connection given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine, Text, bindparam, cast, insert, select, update

from tests.conftest import Person
from vrm.storage.statements import ManyKeys, ManyRows, Statement
from vrm.vendor_api.models import AccessEvent

TABLE = AccessEvent.__table__  # type: ignore[attr-defined]
INSERT = Statement(insert(TABLE))
MANY = ManyRows(TABLE)
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


def test_many_rows_store_what_sqlalchemys_insert_stores(app: FastAPI, ana: Person) -> None:
    # One unnest on PostgreSQL, executemany elsewhere: either way the rows,
    # and the JSON columns' text, are SQLAlchemy's.
    engine = _engine(app)
    ours = [_row(ana.id, n) for n in (1, 2, 3)]
    theirs = [{**_row(ana.id, n), "id": f"other{n:027d}"} for n in (1, 2, 3)]
    ours[1] = {**ours[1], "categories": [], "not_modified": True, "action": "write"}
    theirs[1] = {**theirs[1], "categories": [], "not_modified": True, "action": "write"}
    with engine.connect() as conn:
        MANY.insert(conn, ours)
        conn.execute(insert(TABLE), theirs)
        conn.commit()
    columns = [c for c in TABLE.c if c.name != "id"]
    as_text = [cast(c, Text) for c in TABLE.c if c.name in {"categories", "fields"}]
    with engine.connect() as conn:
        stored = conn.execute(
            select(TABLE.c.id, *columns, *as_text).order_by(TABLE.c.at, TABLE.c.id)
        ).all()
    assert [r[0][:5] for r in stored] == ["event", "other"] * 3
    assert [tuple(r[1:]) for r in stored[0::2]] == [tuple(r[1:]) for r in stored[1::2]]
    assert stored[2].categories == []
    assert stored[2].not_modified is True


def test_many_keys_read_what_sqlalchemys_in_reads(app: FastAPI, ana: Person) -> None:
    # One = ANY(array) on PostgreSQL, IN lists elsewhere: the same rows,
    # each value as SQLAlchemy reads it.
    engine = _engine(app)
    with engine.connect() as conn:
        MANY.insert(conn, [_row(ana.id, n) for n in range(5)])
        conn.commit()
    by_id = ManyKeys(select(TABLE), TABLE.c.id)
    wanted = [_row(ana.id, n)["id"] for n in (0, 3, 4)] + ["no such id", "é"]
    with engine.connect() as conn:
        ours = by_id.rows(conn, [*wanted, wanted[0]])
        theirs = conn.execute(select(TABLE).where(TABLE.c.id.in_(wanted))).all()
        none = by_id.rows(conn, [])
    assert sorted(ours) == sorted(tuple(r) for r in theirs)
    assert len(ours) == 3
    assert all(type(r) is tuple for r in ours)
    assert ours[0][1].tzinfo is not None
    assert none == []
