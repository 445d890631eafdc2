"""Feed throughput: one vendor syncing many customers through GET /v1/feed.

    python -m bench.feed [--customers 100000] [--events 2] [--page 1000]
                         [--changed 0.1] [--seed-procs 2] [--sqlite]

Starts a private PostgreSQL cluster (tests/pgserver.py; ``--sqlite`` for the
embedded default), runs ``vrm init`` and ``vrm vendors add``, and seeds
``--customers`` customers (sign-up, profile and preferences, ``--events``
history events each, and a grant to the vendor for ``profile.email:read
preferences:read history:read``), in ``--seed-procs`` processes, in bulk
(bench/lib/seed.py). Seeding is not measured.

Then uvicorn serves the app and one keep-alive client, holding a
client-credentials token with ``feed:read``, reads the feed from the start
to the end in pages of ``--page`` items, as a vendor's first sync would:
one snapshot per customer (decrypting each customer's records, recording
one access event each). Then ``--changed`` of the customers each change
their email and add an event, and the client syncs again from its cursor.
Prints items per second, customers per second and page latency (p50, p99)
for both syncs, the server's CPU time per customer and per history event
of the first sync (which decrypts and projects every event once), and the
server's resident memory after it (now and at its peak).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.lib import ours, seed
from bench.lib.machine import cpu_of, free_port, memory_of, tree_pids


def _sync(base: str, token: str, cursor: str | None, page: int) -> dict[str, Any]:
    items = 0
    kinds: dict[str, int] = {}
    subjects: set[str] = set()
    latencies: list[float] = []
    body_bytes = 0
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=300) as client:
        while True:
            params: dict[str, Any] = {"limit": page}
            if cursor is not None:
                params["cursor"] = cursor
            t0 = time.perf_counter()
            r = client.get("/v1/feed", params=params, headers={"Authorization": f"Bearer {token}"})
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
            body_bytes += len(r.content)
            data = r.json()
            for item in data["items"]:
                kinds[item["type"]] = kinds.get(item["type"], 0) + 1
                subjects.add(item["subject"])
            items += len(data["items"])
            cursor = data["next_cursor"]
            if not data["has_more"]:
                break
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "items": items,
        "kinds": kinds,
        "subjects": len(subjects),
        "pages": len(latencies),
        "seconds": elapsed,
        "items_per_s": items / elapsed if elapsed else 0.0,
        "subjects_per_s": len(subjects) / elapsed if elapsed else 0.0,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "mb": body_bytes / 1e6,
        "cursor": cursor,
    }


def _print(label: str, s: dict[str, Any]) -> None:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s["kinds"].items()))
    print(
        f"{label:<14} {s['items']:>8} items ({kinds}) for {s['subjects']} customers in "
        f"{s['seconds']:.1f} s, {s['pages']} pages: {s['items_per_s']:.0f} items/s, "
        f"{s['subjects_per_s']:.0f} customers/s, page p50 {s['p50_ms']:.0f} ms, "
        f"p99 {s['p99_ms']:.0f} ms, {s['mb']:.1f} MB"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2, help="history events per customer")
    parser.add_argument("--page", type=int, default=1000, help="feed page size")
    parser.add_argument("--changed", type=float, default=0.1, help="share changed after sync")
    parser.add_argument("--seed-procs", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default instead")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run(parser.parse_args())


def run(args: argparse.Namespace) -> None:
    """The whole benchmark (also bench/data_api.py's ``feed`` phase)."""
    from tests.pgserver import postgres_cluster
    from vrm.settings import Settings  # noqa: F401 - fail early if not installed

    with contextlib.ExitStack() as stack:
        database_url = "" if args.sqlite else stack.enter_context(postgres_cluster())
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vrm-bench-feed-")))
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
            f"{time.perf_counter() - t0:.0f} s on {'SQLite' if args.sqlite else 'PostgreSQL'}"
        )

        server = ours.serve(env, port, data / "server.log")
        stack.callback(server.stop)
        r = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials", "scope": "feed:read"},
            auth=(vendor["client_id"], vendor["client_secret"]),
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        pids = tree_pids(server.pid)
        cpu = cpu_of(pids)
        first = _sync(base, token, None, args.page)
        cpu = cpu_of(pids) - cpu
        _print("first sync", first)
        events = seeded * args.events
        rss, peak = memory_of(pids)
        print(
            f"{'':<14} server CPU {cpu:.1f} s, {cpu / max(1, seeded) * 1e6:.0f} us per customer"
            + (f", {cpu / events * 1e6:.1f} us per history event" if events else "")
            + f"; server resident {rss:.0f} MiB (peak {peak:.0f} MiB)"
        )

        changed = random.Random(7).sample(range(seeded), int(seeded * args.changed))
        seed.change_in_processes(env, changed, args.seed_procs)
        again = _sync(base, token, first["cursor"], args.page)
        _print("incremental", again)


if __name__ == "__main__":
    main()
