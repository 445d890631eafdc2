"""The hot paths' query plans on a seeded PostgreSQL (issue 20).

A few thousand customers are seeded (bench/lib/seed.py) and analysed;
then the app runs each hot path (a vendor read and its history page, a
refresh, the customer's history page, a feed page) while every statement
that reaches the driver is recorded: SQLAlchemy's and the raw-cursor fast
paths' (vrm/storage/statements.py) alike, by a recording cursor class set
on each pooled connection as it is checked out. Each statement is then
explained with its parameters, and its plan must not

- read a table that grows with customers (test_sharding.customer_tables)
  by a sequential scan. The plans are made with ``enable_seqscan`` off,
  so a sequential scan left in one means no index can serve the query:
  a test database holds a few tokens and sessions, which the planner
  rightly scans whole, where a million customers' would not be;
- join rows of two customers: a join that reads customer tables on both
  sides matches them on the customer id (an equality of the two sides'
  customer ids, or the same customer id given to both), or follows one of
  :data:`FOREIGN_KEY_JOINS`, each a row found by an id that belongs to
  one customer (test_sharding.KNOWN_EXCEPTIONS says why those tables are
  not keyed by the customer yet).

The ``test_the_..._check_fails_...`` tests show each check failing on a
bad query.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import SQLModel

from bench.lib import seed, seed_rows
from tests.conftest import TEST_SETTINGS, Person, _truncate_all
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import bearer, log_in
from tests.vendor_api.helpers import feed_token
from tests.vrm.test_sharding import customer_tables
from vrm.app import create_app
from vrm.db import make_engine
from vrm.keys import server as server_keys
from vrm.settings import Settings
from vrm.storage import groupcommit

CUSTOMERS = 1500
EVENTS = 5
GROWING = customer_tables(SQLModel.metadata)
# Joins between customer tables on a row id rather than the customer id:
# (table, column, table, column), both tables known exceptions.
FOREIGN_KEY_JOINS = {
    ("oauth_token", "grant_id", "consent_grant", "id"),
    ("feed_notice", "grant_id", "consent_grant", "id"),
}
_CONDITIONS = ("Index Cond", "Recheck Cond", "Filter", "Hash Cond", "Merge Cond", "Join Filter")
_JOINS = {"Nested Loop", "Hash Join", "Merge Join"}
# alias.column = alias.column, in EXPLAIN's rendering ("(a.x)::text = (b.y)::text").
_EQUALITY = re.compile(r"\(?(\w+)\.(\w+)\)?(?:::\w+)? = \(?(\w+)\.(\w+)\)?")
# A column without its table: "(id)::text", not "(t.id)" nor "f(id)".
_BARE = re.compile(r"(?<![\w.])\((\w+)\)(?=::|\s|\))")
# A customer id given as a value ("(customer_id)::text = 'abc'::text").
_GIVEN = re.compile(r"\(?(?:\w+\.)?(customer_id|id)\)?(?:::\w+)? = '(\w+)'")


class _Recording(psycopg.Cursor[Any]):
    statements: list[tuple[str, Any]] = []

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
        self.statements.append((str(query), params))
        return super().execute(query, params, **kw)

    def executemany(self, query: Any, params_seq: Any, **kw: Any) -> Any:
        params_seq = list(params_seq)
        if params_seq:
            self.statements.append((str(query), params_seq[0]))
        return super().executemany(query, params_seq, **kw)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="module")
def seeded(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """An app on the test database, emptied and seeded (not the ``app``
    fixture: the seeding is shared by the module's tests)."""
    data_dir: Path = tmp_path_factory.mktemp("plans") / "var"
    data_dir.mkdir()
    chosen: dict[str, Any] = {**TEST_SETTINGS}
    settings = Settings(data_dir=data_dir, database_url=postgres_url, **chosen)
    engine = make_engine(settings)
    _truncate_all(engine)
    engine.dispose()
    server_keys.open_key_store(settings, create=True)
    app = create_app(settings)

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        dbapi_connection.cursor_factory = _Recording

    # Before the first request: the group commit keeps the connection it
    # checks out first.
    event.listen(app.state.engine, "checkout", checkout)
    yield app
    event.remove(app.state.engine, "checkout", checkout)
    groupcommit.close(app.state)
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def plans(seeded: FastAPI, postgres_url: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(hot path, statement, plan) of every statement the hot paths ran."""
    app = seeded
    vendor = register_vendor(app)
    seed.seed_customers(app.state.settings, [(vendor.client_id, 1.0)], 0, CUSTOMERS, EVENTS)
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    client = TestClient(app)
    r = log_in(client, "c5@bench.example", seed.PASSWORD)
    assert r.status_code == 200, r.text
    person = Person("c5@bench.example", seed.PASSWORD, client, r.json()["id"])
    tokens = tokens_for(person, vendor, seed_rows.SCOPES)
    feed = feed_token(vendor)
    paths = {
        "vendor read": lambda: vendor.client.get(
            "/v1/data", headers=bearer(tokens["access_token"])
        ),
        "vendor history page": lambda: vendor.client.get(
            "/v1/data/history", params={"limit": 2}, headers=bearer(tokens["access_token"])
        ),
        "refresh": lambda: vendor.refresh(tokens["refresh_token"]),
        "customer history page": lambda: client.get("/api/v1/me/history", params={"limit": 2}),
        "feed page": lambda: vendor.client.get(
            "/v1/feed", params={"limit": 100}, headers=bearer(feed)
        ),
    }
    recorded: list[tuple[str, str, Any]] = []
    for name, run in paths.items():
        _Recording.statements = []
        r = run()
        assert r.status_code == 200, (name, r.text)
        recorded += [(name, sql, params) for sql, params in _Recording.statements]
    return _explained(postgres_url, recorded)


def _explained(url: str, recorded: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    found = []
    with psycopg.connect(_libpq(url)) as conn:
        conn.execute("SET enable_seqscan TO off")
        for name, sql, params in recorded:
            if sql.lstrip().split(None, 1)[0].upper() not in {"SELECT", "UPDATE", "DELETE", "WITH"}:
                continue  # an insert of values, BEGIN, SET: no table is read
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
            assert row is not None
            found.append((name, sql, row[0][0]["Plan"]))
        conn.rollback()
    return found


def _nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)


def sequential_scans(plan: dict[str, Any]) -> list[str]:
    """The customer tables ``plan`` reads by a sequential scan."""
    return [
        n["Relation Name"]
        for n in _nodes(plan)
        if n["Node Type"] == "Seq Scan" and n["Relation Name"] in GROWING
    ]


def _tables(node: dict[str, Any]) -> dict[str, str]:
    """Alias -> table of the customer tables read under ``node``."""
    return {
        n["Alias"]: n["Relation Name"] for n in _nodes(node) if n.get("Relation Name") in GROWING
    }


def _conditions(node: dict[str, Any]) -> list[str]:
    """The conditions under ``node``, a scan's own columns (which EXPLAIN
    leaves bare: ``(id)``) named with its alias."""
    return [
        _BARE.sub(rf"({n['Alias']}.\1)", n[key]) if "Alias" in n else n[key]
        for n in _nodes(node)
        for key in _CONDITIONS
        if key in n
    ]


def _customer_key(table: str) -> str:
    return "id" if table == "customer" else "customer_id"


def _given_customers(node: dict[str, Any]) -> set[str]:
    """The customer ids given as values to the customer tables under ``node``."""
    tables = set(_tables(node).values())
    return {
        value
        for condition in _conditions(node)
        for column, value in _GIVEN.findall(condition)
        if any(_customer_key(t) == column for t in tables)
    }


def _joins_on_the_customer(
    join: dict[str, Any], outer: dict[str, str], inner: dict[str, str]
) -> bool:
    for condition in _conditions(join):
        for a, col_a, b, col_b in _EQUALITY.findall(condition):
            for left, right in ((outer, inner), (inner, outer)):
                if a in left and b in right:
                    pair = (left[a], col_a, right[b], col_b)
                    if col_a == _customer_key(left[a]) and col_b == _customer_key(right[b]):
                        return True
                    if pair in FOREIGN_KEY_JOINS or pair[2:] + pair[:2] in FOREIGN_KEY_JOINS:
                        return True
    return False


def cross_customer_joins(plan: dict[str, Any]) -> list[str]:
    """The joins of ``plan`` between customer tables that do not hold both
    sides to the same customer."""
    found = []
    for node in _nodes(plan):
        if node["Node Type"] not in _JOINS:
            continue
        outer_node, inner_node = node["Plans"][:2]
        outer, inner = _tables(outer_node), _tables(inner_node)
        if not outer or not inner:
            continue  # one side holds no customer's rows (a vendor, a function)
        if _joins_on_the_customer(node, outer, inner):
            continue
        given = _given_customers(outer_node), _given_customers(inner_node)
        if given[0] and given[0] == given[1] and len(given[0]) == 1:
            continue
        found.append(f"{sorted(outer.values())} with {sorted(inner.values())}")
    return found


def _short(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()[:160]


def test_no_hot_path_reads_a_customer_table_by_a_sequential_scan(
    plans: list[tuple[str, str, dict[str, Any]]],
) -> None:
    paths = {name for name, _, _ in plans}
    assert paths == {
        "vendor read",
        "vendor history page",
        "refresh",
        "customer history page",
        "feed page",
    }
    # Each path read customer tables through the recorded cursors.
    assert {name for name, _, plan in plans if _tables(plan)} == paths
    found = [(name, sequential_scans(plan), _short(sql)) for name, sql, plan in plans]
    assert [f for f in found if f[1]] == []


def test_no_hot_path_joins_two_customers_rows(
    plans: list[tuple[str, str, dict[str, Any]]],
) -> None:
    found = [(name, cross_customer_joins(plan), _short(sql)) for name, sql, plan in plans]
    assert [f for f in found if f[1]] == []
    # The feed page joins the change log with the vendor's grants: checked.
    assert any("JOIN consent_grant" in sql for name, sql, _ in plans if name == "feed page")


def _plan(url: str, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    plan: dict[str, Any] = _explained(url, [("", sql, params)])[0][2]
    return plan


def test_the_scan_check_fails_on_a_query_no_index_serves(
    plans: list[Any], postgres_url: str
) -> None:
    plan = _plan(postgres_url, "SELECT id FROM history_record WHERE revision = %(r)s", {"r": 2})
    assert sequential_scans(plan) == ["history_record"]


def test_the_join_check_fails_on_a_join_across_customers(
    plans: list[Any], postgres_url: str
) -> None:
    across = (
        "SELECT a.category FROM document_record a JOIN document_record b "
        "ON a.category = b.category WHERE a.customer_id = %(c)s"
    )
    plan = _plan(postgres_url, across, {"c": "c1"})
    assert cross_customer_joins(plan) == ["['document_record'] with ['document_record']"]
    within = across.replace("a.category = b.category", "a.customer_id = b.customer_id")
    assert cross_customer_joins(_plan(postgres_url, within, {"c": "c1"})) == []
    # Both sides given one customer: within; given two: across.
    same = across + " AND b.customer_id = %(d)s"
    assert cross_customer_joins(_plan(postgres_url, same, {"c": "c1", "d": "c1"})) == []
    assert cross_customer_joins(_plan(postgres_url, same, {"c": "c1", "d": "c2"})) != []
