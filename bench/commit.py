"""What a durable commit costs on SQLite: synchronous=FULL beside NORMAL.

    python -m bench.commit [--commits 2000] [--group 8] [--rounds 4]

On one connection of the product's engine (vrm/db.py, so the product's
pragmas), in a throw-away folder on the disk the data folder would be on
(``--dir``, default the system's temporary folder), it commits ``--commits``
transactions of ``--group`` inserted rows of 500 bytes each (a group
commit's worth of tokens), once with ``synchronous=NORMAL`` and once with
the product's FULL, alternately for ``--rounds`` rounds, so that whatever
else the machine does touches both alike. The server's checkpoint thread
(vrm.db.Checkpoints) runs meanwhile, as in ``vrm serve``. Prints per round and setting the
commits a second and the median and p99 time of one transaction, insert and
commit included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Connection

from vrm.db import make_engine, start_checkpoints
from vrm.settings import Settings


def _run(conn: Connection, setting: str, commits: int, group: int) -> list[float]:
    driver = conn.connection.driver_connection
    assert driver is not None  # noqa: S101 - a checked-out connection has one
    driver.execute(f"PRAGMA synchronous={setting}")
    row = os.urandom(250).hex()
    times = []
    for _ in range(commits):
        start = time.perf_counter()
        driver.execute("BEGIN IMMEDIATE")
        driver.executemany("INSERT INTO t (v) VALUES (?)", [(row,)] * group)
        driver.execute("COMMIT")
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--group", type=int, default=8, help="rows per transaction")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--dir", default=None, help="where the database file goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vrm-commit-", dir=args.dir) as folder:
        engine = make_engine(Settings(data_dir=Path(folder)))
        # The server's checkpoint thread: it keeps the WAL short, and SQLite
        # then writes over the WAL's start again instead of growing it.
        checkpoints = start_checkpoints(engine)
        with engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver is not None  # noqa: S101
            driver.isolation_level = None  # BEGIN and COMMIT are ours
            driver.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            print(f"{args.commits} commits of {args.group} rows of 500 bytes, in {folder}")
            print(f"{'round':>5} {'synchronous':>11} {'commits/s':>10} {'p50 ms':>7} {'p99 ms':>7}")
            for n in range(1, args.rounds + 1):
                for setting in ("NORMAL", "FULL"):
                    times = _run(conn, setting, args.commits, args.group)
                    p99 = statistics.quantiles(times, n=100)[98]
                    print(
                        f"{n:>5} {setting:>11} {len(times) / sum(times):>10.0f}"
                        f" {statistics.median(times) * 1e3:>7.3f} {p99 * 1e3:>7.3f}"
                    )
        assert checkpoints is not None  # noqa: S101 - SQLite
        checkpoints.stop()
        engine.dispose()


if __name__ == "__main__":
    main()
