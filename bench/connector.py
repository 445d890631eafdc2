"""The connector's sync: a vendor with many granted customers syncing into
the PostgreSQL sink, from zero and after some changed.

    python -m bench.connector [--customers 100000] [--events 2] [--changed 0.1]
                              [--page 1000] [--seed-procs 2]

Starts a private PostgreSQL cluster (tests/pgserver.py) holding the
store's database and, beside it, the vendor's CRM database; runs ``vrm
init`` and ``vrm vendors add``; seeds ``--customers`` customers with a
profile, preferences, ``--events`` history events and a grant to the vendor
(bench/lib/seed.py; not measured). Then ``vrm serve`` serves the store and
the connector (connectors/sync.py, in this process, as ``vrm-connector
sync`` runs it) syncs the feed into its ``sql`` sink on PostgreSQL:

- **first sync**: from no cursor, every customer's snapshot;
- **after changes**: ``--changed`` of the customers change their email and
  add an event, and the connector syncs from its cursor.

Each prints items per second end to end (the store's feed, dlt, the sink),
the share of the time the sink took, and the CPU each item cost the store's
server, PostgreSQL (the store's database and the CRM's) and the connector.
After the first sync the store holds what it decrypted in memory; the bench
then reads the same pages and drops them (**feed, warm**: the store's
share), and resyncs from zero into tables of its own (**resync, warm**).
Then the **sink's apply rate**: the rows the first sync wrote (contacts
and history events), applied again through the sink into empty tables,
against a plain ``COPY`` of the same rows into tables of the same shape;
both in rows per second, and the ratio.

Left out: the vendor's CRM on another machine (here it shares the two
cores with the store, its database and the connector), TLS, and
revocation notices. And real histories: ``--events`` is 2 by default so
that 100,000 customers seed in minutes, where customers hold dozens, and
each event costs the store's feed about 100 us (docs/connectors.md,
"Speed"); give ``--events 20`` for a realistic figure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.lib import ours, seed
from bench.lib.machine import free_port, tree_cpu


class Cpu:
    """CPU seconds used so far by the store's server, the PostgreSQL cluster
    (the store's database and the CRM's) and this process (the connector)."""

    def __init__(self, server_pid: int, postmaster_pid: int) -> None:
        self.server_pid, self.postmaster_pid = server_pid, postmaster_pid

    def now(self) -> dict[str, float]:
        return {
            "store": tree_cpu(self.server_pid, set()),
            "postgres": tree_cpu(self.postmaster_pid, set()),
            "connector": time.process_time(),
        }


def _postmaster(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None  # noqa: S101
    stat = Path(f"/proc/{row[0]}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _sync(
    config: Any, store: Any, sink: Any, mapping: Any, state: Any, cpu: Cpu
) -> dict[str, float]:
    from connectors import sync

    applying = [0.0]
    upsert_many, upsert_events = sink.upsert_many, sink.upsert_events

    def timed(method: Any) -> Any:
        def run(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return method(*args, **kw)
            finally:
                applying[0] += time.perf_counter() - t0

        return run

    sink.upsert_many, sink.upsert_events = timed(upsert_many), timed(upsert_events)
    before = cpu.now()
    t0 = time.perf_counter()
    done = sync.run(config, store, sink, mapping, state, limit=config.page_size)
    took = time.perf_counter() - t0
    after = cpu.now()
    sink.upsert_many, sink.upsert_events = upsert_many, upsert_events
    used = {f"cpu_{k}": after[k] - before[k] for k in before}
    return {
        "items": done.items,
        "ops": done.ops,
        "seconds": took,
        "sink_seconds": applying[0],
        **used,
    }


def _print(label: str, s: dict[str, float]) -> None:
    print(
        f"{label:<14} {s['items']:>8.0f} items in {s['seconds']:6.1f} s: "
        f"{s['items'] / s['seconds']:7.0f} items/s end to end, "
        f"{s['ops']:.0f} sink ops, the sink {100 * s['sink_seconds'] / s['seconds']:.0f}% of it"
    )
    per = {k[4:]: 1e6 * v / s["items"] for k, v in s.items() if k.startswith("cpu_")}
    print(
        f"{'':<14} CPU per item: "
        + ", ".join(f"{k} {v:.0f} us" for k, v in per.items())
        + f"; {sum(per.values()):.0f} us in all"
    )


def _rows(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        contacts = conn.execute("SELECT * FROM vrm_contacts").fetchall()
        events = conn.execute("SELECT * FROM vrm_history_events").fetchall()
    return contacts, events


def _apply_rate(crm_url: str, sqlalchemy_url: str) -> None:
    """The sink's upserts against COPY, for the rows the first sync wrote."""
    from connectors.mapping import DEFAULT, FieldMap
    from connectors.sinks import Event
    from connectors.sinks.sql import SQLSink

    contacts, events = _rows(crm_url)
    with psycopg.connect(crm_url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'vrm_contacts' ORDER BY ordinal_position"
            )
        ]
    rows = len(contacts) + len(events)
    sink = SQLSink(
        sqlalchemy_url, FieldMap(DEFAULT), contacts_table="again_c", events_table="again_e"
    )
    fields = [c for c in columns if c not in ("subject", "updated_at")]
    by_name = [dict(zip(columns, row, strict=True)) for row in contacts]
    t0 = time.perf_counter()
    for start in range(0, len(by_name), 1000):
        sink.upsert_many(
            [(r["subject"], {f: r[f] for f in fields}) for r in by_name[start : start + 1000]]
        )
    for start in range(0, len(events), 1000):
        sink.upsert_events([Event(e[0], e[1], e[4]) for e in events[start : start + 1000]])
    through_sink = time.perf_counter() - t0
    sink.close()
    with psycopg.connect(crm_url) as conn:
        conn.execute("CREATE TABLE copy_c (LIKE vrm_contacts INCLUDING ALL)")
        conn.execute("CREATE TABLE copy_e (LIKE vrm_history_events INCLUDING ALL)")
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy("COPY copy_c FROM STDIN") as copy:
                for row in contacts:
                    copy.write_row([_copyable(v) for v in row])
            with cursor.copy("COPY copy_e FROM STDIN") as copy:
                for row in events:
                    copy.write_row([_copyable(v) for v in row])
        conn.commit()
        copied = time.perf_counter() - t0
    sink_rate, copy_rate = rows / through_sink, rows / copied
    print(
        f"sink apply     {rows} rows: through the sink {sink_rate:,.0f} rows/s, "
        f"plain COPY {copy_rate:,.0f} rows/s; ratio {100 * sink_rate / copy_rate:.0f}% "
        "(goal: at least 25%)"
    )


def _copyable(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2)
    parser.add_argument("--changed", type=float, default=0.1)
    parser.add_argument("--page", type=int, default=1000)
    parser.add_argument("--seed-procs", type=int, default=2)
    run(parser.parse_args())


def run(args: argparse.Namespace) -> None:
    from connectors.config import Config
    from connectors.sinks.open import mapping_of, open_sink
    from connectors.state import State
    from connectors.store import Store
    from tests.pgserver import postgres_cluster

    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(postgres_cluster())
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vrm-bench-conn-")))
        plain = database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute("CREATE DATABASE crm")
        crm_plain = plain.rsplit("/", 1)[0] + "/crm"
        crm_url = crm_plain.replace("postgresql://", "postgresql+psycopg://")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = ours.env_for(data, base, database_url, **seed.FAST_HASH)
        vendor = ours.init(env, "Bench", "https://vendor.example/cb")
        t0 = time.perf_counter()
        seeded = seed.seed_in_processes(
            env, vendor["client_id"], args.customers, args.events, args.seed_procs
        )
        print(
            f"seeded {seeded} customers ({args.events} events each) in "
            f"{time.perf_counter() - t0:.0f} s (not measured)"
        )
        server = ours.serve(env, port, data / "server.log")
        stack.callback(server.stop)
        config = Config.model_validate(
            {
                "store_url": base,
                "client_id": vendor["client_id"],
                "secret": vendor["client_secret"],
                "sink": {"kind": "sql", "url": crm_url},
                "state_dir": str(data / "connector"),
                "page_size": args.page,
            }
        )
        store = Store(base, vendor["client_id"], vendor["client_secret"])
        sink = open_sink(config)
        state = State(config.state_dir)
        mapping = mapping_of(config)
        cpu = Cpu(server.pid, _postmaster(plain))
        first = _sync(config, store, sink, mapping, state, cpu)
        _print("first sync", first)
        # Each side alone, now that the store has what it decrypted in
        # memory (VRM_DERIVED_CACHE_MIB): the same pages read and dropped,
        # then a resync from zero into tables of its own.
        from connectors.source import pages

        t0 = time.perf_counter()
        read = sum(len(items) for items, _, _ in pages(store, None, args.page))
        took = time.perf_counter() - t0
        print(f"{'feed, warm':<14} {read:>8} items in {took:6.1f} s: {read / took:7.0f} items/s")
        again_config = config.model_copy(
            update={
                "state_dir": data / "connector-again",
                "sink": config.sink.model_copy(
                    update={"contacts_table": "warm_c", "events_table": "warm_e"}
                ),
            }
        )
        warm_sink = open_sink(again_config)
        warm = _sync(again_config, store, warm_sink, mapping, State(again_config.state_dir), cpu)
        warm_sink.close()
        _print("resync, warm", warm)
        changed = random.Random(7).sample(range(seeded), int(seeded * args.changed))
        seed.change_in_processes(env, changed, args.seed_procs)
        again = _sync(config, store, sink, mapping, state, cpu)
        _print("after changes", again)
        sink.close()
        store.close()
        _apply_rate(crm_plain, crm_url)


if __name__ == "__main__":
    main()
