"""Two workers against one, on PostgreSQL: vendor reads and the token endpoint.

    python -m bench.workers [--workers 1,2] [--phases reads,client_credentials,refresh_token]
                            [--read-concurrency 32] [--token-concurrency 16]
                            [--seconds 10] [--warmup 2] [--quick] [--quiet-wait 60]

For each worker count, our server (``vrm serve --workers N``, each worker
with a listening socket of its own: vrm/serving.py) on a database of its
own in one private PostgreSQL cluster (tests/pgserver.py, ``fsync=off`` as
in the test suite), then each phase after a warm-up:

- ``reads``: ``GET /v1/data`` of a realistic customer (every field of the
  profile and preferences, 50 history events; scope ``profile:read
  preferences:read history:read``), closed loop, ``--read-concurrency``
  keep-alive connections from this process (bench/lib/load.py);
- ``client_credentials`` and ``refresh_token``: ``POST /oauth/token`` from a
  spawned load process, ``--token-concurrency`` connections, each refresh
  spending the token the last answer gave (bench/lib/token_load.py).

It prints req/s, p50 and p99 per worker count and phase, with the server's
and the load's CPU, then for each phase the ratio of the most workers to
one and whether it meets issue 20's goal of at least 1.5x. The load
generator shares the machine's cores with the server. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import data_api
from bench.lib import ours, token_load
from bench.lib.load import measure
from bench.lib.machine import CPU_NOTE, cpu_of, memory_of, tree_pids, wait_quiet

GOAL = 1.5
READ_SCOPE = "profile:read preferences:read history:read"
EVENTS = 50
PHASES = ("reads", *token_load.PHASES)


@dataclass
class Row:
    workers: int
    phase: str
    concurrency: int
    ok: int
    rps: float
    p50: float
    p99: float
    errors: int
    server_cpu: float | None
    client_cpu: float
    other_cpu: float | None
    rss_mib: float
    db_cpu: float  # PostgreSQL's processes, over warm-up and window (in "other" too)
    samples: list[str]


def _database(cluster_url: str, name: str) -> str:
    plain = cluster_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return cluster_url.rsplit("/", 1)[0] + "/" + name


def _postmaster(cluster_url: str) -> int:
    """The pid of the cluster's postmaster (its processes are its tree)."""
    port = cluster_url.rsplit(":", 1)[1].split("/", 1)[0]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"/postgres") and port.encode() in argv:
                return int(entry.name)
    raise RuntimeError(f"no postmaster on port {port}")


class _DbCpu:
    """PostgreSQL's CPU in shares of one core from start to :meth:`share`."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self.cpu = {pid: cpu_of([pid]) for pid in tree_pids(postmaster)}
        self.started = time.monotonic()

    def share(self) -> float:
        # Backends that started meanwhile (a pool's new connections) count whole.
        used = sum(cpu_of([p]) - self.cpu.get(p, 0.0) for p in tree_pids(self.postmaster))
        return used / (time.monotonic() - self.started)


def _rss_per_worker(pid: int, workers: int) -> float:
    """Resident MiB of one server process (the tree's, less the supervisor
    when there is one, shared by the workers)."""
    pids = tree_pids(pid)
    if workers > 1:
        pids = [p for p in pids if p != pid]
    now, _ = memory_of(pids)
    return now / max(1, len(pids))


@contextlib.contextmanager
def _server(cluster_url: str, workers: int) -> Iterator[ours.Ours]:
    url = _database(cluster_url, f"vrm_workers_{workers}_{secrets.token_hex(3)}")
    server = ours.start(workers, url)
    try:
        yield server
    finally:
        server.stop()


def run_workers(cluster_url: str, workers: int, args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    postmaster = _postmaster(cluster_url)
    with _server(cluster_url, workers) as server:
        print(f"  {workers} worker(s): seeding a customer with {EVENTS} events ...", flush=True)
        target, _ = data_api.seed_customer(server, READ_SCOPE, EVENTS)
        for phase in args.phases:
            wait_quiet(args.quiet_wait)
            print(f"  {workers} worker(s): {phase} ...", flush=True)
            db = _DbCpu(postmaster)
            if phase == "reads":
                run = measure(target, args.read_concurrency, args.warmup, args.seconds)
                rows.append(
                    Row(
                        workers,
                        phase,
                        args.read_concurrency,
                        run.ok,
                        run.rps,
                        run.p50,
                        run.p99,
                        run.errors,
                        run.server_cpu,
                        run.client_cpu,
                        run.other_cpu,
                        _rss_per_worker(server.pid, workers),
                        db.share(),
                        run.samples,
                    )
                )
                continue
            tokens = token_load.Target(
                server.base_url,
                server.token_path,
                server.client_id,
                server.client_secret,
                server.refresh_tokens,
                server.stop,
                cc_scope="feed:read",
                pid=server.pid,
            )
            phase_args = argparse.Namespace(
                concurrency=args.token_concurrency,
                client_procs=1,
                warmup=args.warmup,
                seconds=args.seconds,
            )
            result = token_load.run_phase(f"{workers} worker(s)", tokens, phase, phase_args)
            rows.append(
                Row(
                    workers,
                    phase,
                    args.token_concurrency,
                    result.ok,
                    result.rps,
                    result.p50,
                    result.p99,
                    result.errors,
                    result.server_cpu,
                    result.client_cpu,
                    result.other_cpu,
                    _rss_per_worker(server.pid, workers),
                    db.share(),
                    result.samples,
                )
            )
    return rows


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print()
    print(
        f"workers on PostgreSQL (fsync=off): {args.seconds:g} s per phase after"
        f" {args.warmup:g} s warm-up, {os.cpu_count()} CPUs shared with the load generator"
    )
    header = (
        f"{'phase':<20}{'workers':>8}{'conc':>6}{'requests':>10}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}{'srv CPU':>9}{'cli CPU':>9}{'other':>7}{'db CPU':>8}"
        f"{'RSS/worker':>12}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        srv = "-" if r.server_cpu is None else f"{r.server_cpu:.0%}"
        other = "-" if r.other_cpu is None else f"{r.other_cpu:.0%}"
        print(
            f"{r.phase:<20}{r.workers:>8}{r.concurrency:>6}{r.ok:>10}{r.rps:>9.0f}{r.p50:>9.2f}"
            f"{r.p99:>9.2f}{r.errors:>8}{srv:>9}{r.client_cpu:>9.0%}{other:>7}{r.db_cpu:>8.0%}"
            f"{r.rss_mib:>9.0f} MiB"
        )
    print(CPU_NOTE)
    print("(db CPU: PostgreSQL's processes, part of 'other', over the warm-up and the window)")
    for r in rows:
        for sample in r.samples:
            print(f"  {r.workers} worker(s) {r.phase} error: {sample}")
    by = {(r.phase, r.workers): r for r in rows}
    most = max(args.workers)
    if most == 1:
        return
    print()
    for phase in args.phases:
        one, many = by.get((phase, 1)), by.get((phase, most))
        if one and many and one.rps:
            ratio = many.rps / one.rps
            verdict = "met" if ratio >= GOAL else "not met"
            print(
                f"{phase}: {most} workers / 1 = {ratio:.2f}x req/s,"
                f" p99 {many.p99:.2f} ms against {one.p99:.2f} ms"
                f" (goal: at least {GOAL:.1f}x, {verdict})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--read-concurrency", type=int, default=32)
    parser.add_argument("--token-concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured load first")
    parser.add_argument("--quick", action="store_true", help="3 s phases after 1 s warm-up")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each phase, wait up to this long for the machine to be idle (0: don't)",
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 3.0, 1.0
    try:
        args.workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    except ValueError:
        parser.error("--workers takes comma-separated integers")
    if not args.workers or args.workers[0] < 1:
        parser.error("--workers needs counts of 1 or more")
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every stop()

    signal.signal(signal.SIGTERM, on_signal)
    from tests.pgserver import postgres_cluster

    rows: list[Row] = []
    try:
        with postgres_cluster() as cluster_url:
            for workers in args.workers:
                rows += run_workers(cluster_url, workers, args)
    except KeyboardInterrupt:
        raise SystemExit("interrupted; everything this run started has been stopped") from None
    print_table(rows, args)


if __name__ == "__main__":
    main()
