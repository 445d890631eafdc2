"""Customers written in bulk, as the services would write them (bench/feed.py,
bench/seed_scale.py).

A hundred thousand sign-ups through the services would take an hour here
(SQLAlchemy's per-object overhead, about 60 ms a customer), so :func:`seed`
writes the same rows the services write (built by seed_rows.py: sealed
with the product's vault, keys in the product's key store, change-log
positions from the product's clock) in bulk, one transaction per batch: on
PostgreSQL with ``COPY``, elsewhere with one Core ``INSERT`` per table and
batch. Each function runs in a process of its own (a spawned pool),
configured by the ``VRM_`` environment it is given. Each process waits
on its key files' fsyncs and on the database, hence more of them than
cores (bench/seed_scale.py runs four; no other count was compared).

Seeded customers are server-held, whatever ``VRM_KEY_CUSTODY`` says:
customers from before, as if not yet moved (docs/keys.md, "Moving over").
The rows written here mirror a server-held sign-up (a root key in the key
store, a plain Argon2id password hash, hashed once and shared by every
seeded customer) and a grant without escrow; a customer-held seed would
have to copy sign-up's password wrapping and each grant's escrow too, a
second copy of those services. So the benchmarks measure vendors reading
through the key store's root keys, not through grants' escrows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vrm.settings import Settings

PASSWORD = "benchmark passphrase 1"  # noqa: S105 - throwaway bench customers
# Argon2id at test cost: the measured server never hashes a password.
FAST_HASH = {
    "VRM_ARGON2_TIME_COST": "1",
    "VRM_ARGON2_MEMORY_KIB": "1024",
    "VRM_ARGON2_PARALLELISM": "1",
}
BATCH = 500

# (vendor id, share of the customers who grant it): seed_rows.grants_of.
Vendors = Sequence[tuple[str, float]]


@dataclass(frozen=True)
class Job:
    env: dict[str, str]
    vendors: tuple[tuple[str, float], ...]
    start: int
    count: int
    events: int


def seed_in_processes(
    env: dict[str, str], vendors: Vendors | str, customers: int, events: int, procs: int
) -> int:
    """:func:`seed` ``customers`` customers in ``procs`` spawned processes;
    how many were seeded. ``vendors``: one vendor id, which every customer
    grants, or (vendor id, share) pairs. Then, on PostgreSQL, ``ANALYZE``:
    autovacuum would within a minute of a bulk load, and without it the
    planner's estimates of the fresh tables were off by hundreds of times
    (the feed's page query took 2-3 s instead of milliseconds:
    docs/performance.md)."""
    import multiprocessing

    shares = ((vendors, 1.0),) if isinstance(vendors, str) else tuple(vendors)
    procs = max(1, procs)
    # Batches dealt out in turn, so every process has work to the end.
    per = -(-customers // (procs * BATCH)) * BATCH
    jobs = [
        Job(env, shares, start, min(per, customers - start), events)
        for start in range(0, customers, per)
    ]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        seeded = sum(pool.map(seed, jobs))
    url = env.get("VRM_DATABASE_URL", "")
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(_libpq(url), autocommit=True) as conn:
            conn.execute("ANALYZE")
    return seeded


def change_in_processes(env: dict[str, str], changed: list[int], procs: int) -> None:
    """:func:`change` those customers, in ``procs`` spawned processes."""
    import multiprocessing

    procs = max(1, procs)
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        pool.map(change, [(env, changed[i::procs]) for i in range(procs)])


def seed(job: Job) -> int:
    """:func:`seed_customers` in a spawned process, configured by the job's
    ``VRM_`` environment."""
    os.environ.update(job.env)
    from vrm.settings import Settings

    return seed_customers(Settings(), job.vendors, job.start, job.count, job.events)


def seed_customers(
    settings: Settings, vendors: Vendors, start: int, count: int, events: int
) -> int:
    """Seed customers [start, start + count) in this process, in batches
    of :data:`BATCH`, each its own transaction.

    The rows mirror accounts.sign_up, records.replace_document,
    history.insert_event and grants.create (seed_rows.py); tests/vendor_api
    cover those paths themselves, tests/bench/test_seed.py that the
    product opens what is seeded here."""
    from sqlmodel import Session, col, select

    import vrm.models  # noqa: F401 - every table, for the foreign keys
    from bench.lib import seed_rows
    from consent.vendors.models import Vendor
    from vrm.accounts.passwords import Passwords
    from vrm.crypto.keystore import FileKeyStore
    from vrm.db import make_engine
    from vrm.keys.service import Vault

    vault = Vault(FileKeyStore(settings.key_dir_resolved))
    engine = make_engine(settings)
    with Session(engine) as session:
        wanted = [vendor_id for vendor_id, _ in vendors]
        found = session.exec(select(Vendor).where(col(Vendor.id).in_(wanted))).all()
    password_hash = Passwords(settings).hash(PASSWORD)
    build = seed_rows.Customers(vault, password_hash, events, start, found)
    write = _insert if settings.is_sqlite else _copy
    try:
        for first in range(start, start + count, BATCH):
            numbers = range(first, min(first + BATCH, start + count))
            grants = [seed_rows.grants_of(n, vendors) for n in numbers]
            taken = sum(seed_rows.positions(events, len(g)) for g in grants)
            seq = _reserve(engine, taken)
            rows = seed_rows.empty_rows()
            now = datetime.now(UTC)
            for n, vendor_ids in zip(numbers, grants, strict=True):
                seq = build.rows(n, vendor_ids, seq, now, rows)
            write(engine, rows)
    finally:
        engine.dispose()
    return count


def _reserve(engine: Any, count: int) -> int:
    """Take ``count`` positions of the change-log clock, in a transaction
    of their own: held to the batch's commit, the clock's row lock would
    make the processes take turns. The position before them."""
    from sqlalchemy import text

    with engine.begin() as conn:
        last: int = conn.execute(
            text("UPDATE feed_clock SET seq = seq + :n WHERE id = 1 RETURNING seq"),
            {"n": count},
        ).scalar_one()
    return last - count


def _copy(engine: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
    """One transaction, one ``COPY`` per table, on the driver's connection."""
    from psycopg.types.json import Json
    from sqlalchemy.sql import sqltypes
    from sqlmodel import SQLModel

    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            # Seeding only: the measured server keeps the defaults.
            cursor.execute("SET LOCAL synchronous_commit TO off")
            for name, table_rows in rows.items():
                if not table_rows:
                    continue
                table = SQLModel.metadata.tables[name]
                names = list(table_rows[0])
                json_at = [
                    i for i, c in enumerate(names) if isinstance(table.c[c].type, sqltypes.JSON)
                ]
                columns = ", ".join(f'"{c}"' for c in names)
                with cursor.copy(f'COPY "{name}" ({columns}) FROM STDIN') as copy:
                    for row in table_rows:
                        values = list(row.values())
                        for i in json_at:
                            values[i] = Json(values[i])
                        copy.write_row(values)


def _insert(engine: Any, rows: dict[str, list[dict[str, Any]]]) -> None:
    """One transaction, one Core ``INSERT`` per table (SQLite)."""
    from sqlalchemy import insert
    from sqlmodel import SQLModel

    with engine.begin() as conn:
        for name, table_rows in rows.items():
            if table_rows:
                conn.execute(insert(SQLModel.metadata.tables[name]), table_rows)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def change(job: tuple[dict[str, str], list[int]]) -> int:
    """Customers ``ns`` each change their email and add an event."""
    env, ns = job
    os.environ.update(env)
    from sqlmodel import Session, select

    import vrm.models  # noqa: F401 - every table, for the foreign keys
    from vrm.accounts.models import Customer
    from vrm.catalogue.history import HistoryEvent
    from vrm.crypto.keystore import FileKeyStore
    from vrm.db import make_engine
    from vrm.history import service as history
    from vrm.keys.service import Vault
    from vrm.records import service as records
    from vrm.settings import Settings

    settings = Settings()
    engine = make_engine(settings)
    vault = Vault(FileKeyStore(settings.key_dir_resolved))
    with Session(engine) as session:
        ids = list(session.exec(select(Customer.id).order_by(Customer.created_at)).all())
    for n in ns:
        with Session(engine) as session:
            records.patch_document(
                session=session,
                vault=vault,
                customer_id=ids[n],
                category="profile",
                patch={"email": f"changed{n}@bench.example"},
                if_match=None,
            )
            history.add_event(
                session=session,
                vault=vault,
                customer_id=ids[n],
                event=HistoryEvent(
                    vendor="Bench Books",
                    type="return",
                    occurred_at=datetime.now(UTC),
                ),
                source="customer",
            )
    engine.dispose()
    return len(ns)
