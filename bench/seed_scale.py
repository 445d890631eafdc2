"""Seeding at scale: many customers written at database speed.

    python -m bench.seed_scale [--customers 1000000] [--events 20]
                               [--database-url postgresql+psycopg://...]
                               [--data-dir DIR] [--procs 4]
                               [--vendors Feed:1,Shop:0.1,Corner:0.01]

Runs ``vrm init`` in ``--data-dir`` (the key store lives there: a server
reading the seeded customers must use the same folder) against
``--database-url``, or, without one, a private PostgreSQL cluster
(tests/pgserver.py) that is deleted at the end; adds the vendors of
``--vendors`` (name:share, each granted by that share of the customers)
and seeds ``--customers`` customers, each with a profile, preferences,
``--events`` history events and their grants (bench/lib/seed.py), in
``--procs`` processes. Prints customers and rows per second, the elapsed
time, and the database's and the key store's size; on its last line, the
vendors as JSON (client ids and secrets), for the benchmarks that read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.lib import ours, seed


def _vendors(text: str) -> list[tuple[str, float]]:
    found: list[tuple[str, float]] = []
    for part in text.split(","):
        name, _, share = part.partition(":")
        found.append((name, float(share or 1)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=20, help="history events per customer")
    parser.add_argument("--database-url", default="", help="PostgreSQL; default a private one")
    parser.add_argument("--data-dir", type=Path, help="default a temporary folder")
    parser.add_argument("--procs", type=int, default=4, help="seeding processes")
    parser.add_argument("--vendors", type=_vendors, default=_vendors("Feed:1,Shop:0.1,Corner:0.01"))
    args = parser.parse_args()

    from tests.pgserver import postgres_cluster

    with contextlib.ExitStack() as stack:
        url = args.database_url or stack.enter_context(postgres_cluster())
        data = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        data.mkdir(parents=True, exist_ok=True)
        env = ours.env_for(data, "http://127.0.0.1:8000", url, **seed.FAST_HASH)
        first, *rest = args.vendors
        vendors = [ours.init(env, first[0])] + [ours.add_vendor(env, name) for name, _ in rest]
        shares = [
            (v["client_id"], share) for v, (_, share) in zip(vendors, args.vendors, strict=True)
        ]
        rows_before = _rows(url)
        t0 = time.perf_counter()
        seeded = seed.seed_in_processes(env, shares, args.customers, args.events, args.procs)
        elapsed = time.perf_counter() - t0  # ANALYZE included
        rows = _rows(url) - rows_before
        keys = subprocess.run(["du", "-sm", str(data)], capture_output=True, text=True, check=True)
        print(
            f"seeded {seeded} customers ({args.events} events each, {args.procs} processes) "
            f"in {elapsed:.0f} s: {seeded / elapsed:.0f} customers/s, {rows / elapsed:.0f} rows/s "
            f"(about {rows} rows); database {_size(url)}, data dir {keys.stdout.split()[0]} MB"
        )
        if seeded < 1_000_000:
            print(
                f"at this rate 1,000,000 customers would take {1e6 / seeded * elapsed / 60:.0f} min"
            )
        print(json.dumps(vendors))


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _rows(url: str) -> int:
    """Rows of every table, as the statistics count them (exact after the
    seeder's ANALYZE)."""
    with _connect(url) as conn:
        found = conn.execute("SELECT coalesce(sum(n_live_tup), 0) FROM pg_stat_user_tables")
        return int(found.fetchone()[0])


def _size(url: str) -> str:
    with _connect(url) as conn:
        found = conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return str(found.fetchone()[0])


if __name__ == "__main__":
    main()
