"""Token endpoint throughput: our authorization server beside node oidc-provider.

    python -m bench.token_endpoint [--only-oidc-provider | --only-ours] [--workers N]
                                   [--concurrency 8] [--seconds 10] [--warmup 2]
                                   [--postgres] [--op-adapter map|builtin|postgres]

Two phases per server, each at a fixed concurrency for a fixed time after a
warm-up: ``client_credentials`` (POST grant_type=client_credentials) and
``refresh_token`` (every request spends the refresh token that the previous
response on the same connection returned, so rotation is on the hot path).
Both use HTTP Basic client authentication, one keep-alive connection per
concurrent client, and count a request as good only on a 200 carrying an
access token (and, for refresh, a new refresh token).

The peer is node oidc-provider (bench/lib/oidc_provider.py) with the same
rules. The load comes from separate client processes (bench/lib/token_load.py)
cheap enough to leave the server the machine's cores; the table shows the
CPU both sides used so a saturated client is visible. See bench/README.md
for how refresh tokens are obtained.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Callable

from bench.lib import oidc_provider, ours
from bench.lib.machine import CPU_NOTE, wait_quiet
from bench.lib.token_load import PHASES, PhaseResult, Target, run_phase

# Issue 3: at least oidc-provider's throughput, phase by phase.
GOAL = 1.0


def start_ours(workers: int, database_url: str) -> Target:
    """Our server with ``workers`` uvicorn workers (bench/lib/ours.py)."""
    server = ours.start(workers, database_url)
    return Target(
        server.base_url,
        server.token_path,
        server.client_id,
        server.client_secret,
        server.refresh_tokens,
        server.stop,
        cc_scope="feed:read",
        pid=server.pid,
    )


def run_server(
    label: str, start: Callable[[int], Target], args: argparse.Namespace
) -> list[PhaseResult]:
    target = start(args.workers)
    results = []
    try:
        for phase in args.phases:
            wait_quiet(args.quiet_wait)
            print(f"  {label}: {phase} ...", flush=True)
            results.append(run_phase(label, target, phase, args))
    finally:
        target.stop()
    return results


def print_table(results: list[PhaseResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"token endpoint: concurrency {args.concurrency}, {args.seconds:g} s per phase"
        f" after {args.warmup:g} s warm-up, server workers {args.workers},"
        f" client processes {args.client_procs}, {os.cpu_count()} CPUs"
    )
    if not args.only_oidc_provider:
        print(f"ours store: {'PostgreSQL' if args.postgres else 'SQLite'}")
    if not args.only_ours:
        print(f"oidc-provider store: {args.op_adapter} adapter")
    header = (
        f"{'phase':<19}{'server':<15}{'requests':>9}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'errors':>8}{'srv CPU':>9}{'cli CPU':>9}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        srv = "-" if r.server_cpu is None else f"{r.server_cpu:.0%}"
        other = "-" if r.other_cpu is None else f"{r.other_cpu:.0%}"
        print(
            f"{r.phase:<19}{r.server:<15}{r.ok:>9}{r.rps:>9.0f}{r.p50:>8.2f}{r.p99:>8.2f}"
            f"{r.errors:>8}{srv:>9}{r.client_cpu:>9.0%}{other:>7}"
        )
    print(CPU_NOTE)
    for r in results:
        for sample in r.samples:
            print(f"  {r.server} {r.phase} error: {sample}")
        if args.timeline:
            print(f"  {r.server} {r.phase} per second: {' '.join(map(str, r.timeline))}")
    by = {(r.server, r.phase): r for r in results}
    for phase in args.phases:
        ours, peer = by.get(("ours", phase)), by.get(("oidc-provider", phase))
        if ours and peer and peer.rps:
            ratio = ours.rps / peer.rps
            verdict = "met" if ratio >= GOAL else "not met"
            print(
                f"ratio ours / oidc-provider, {phase}: {ratio:.2f}x"
                f" (goal: at least {GOAL:.1f}x, {verdict})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--only-oidc-provider", action="store_true")
    side.add_argument("--only-ours", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="server processes on each side")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="run ours on a private PostgreSQL cluster (tests/pgserver.py) instead of SQLite",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per phase")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured load first")
    parser.add_argument("--client-procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    parser.add_argument("--timeline", action="store_true", help="print req/s for every second")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each phase, wait up to this long for the machine to be idle (0: don't)",
    )
    parser.add_argument(
        "--op-adapter",
        choices=("map", "builtin", "postgres"),
        default="map",
        help="oidc-provider store: a Map (default), its own LRU development adapter, or"
        " PostgreSQL (the --postgres cluster, or a private one started for it)",
    )
    args = parser.parse_args()
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every stop()

    signal.signal(signal.SIGTERM, on_signal)
    results: list[PhaseResult] = []
    ours_on_pg = args.postgres and not args.only_oidc_provider
    peer_on_pg = args.op_adapter == "postgres" and not args.only_ours
    try:
        # One private cluster for whichever sides need PostgreSQL, running
        # until both are done; the peer gets a database of its own in it.
        with contextlib.ExitStack() as cluster:
            url = ""
            if ours_on_pg or peer_on_pg:
                from tests.pgserver import postgres_cluster

                url = cluster.enter_context(postgres_cluster())
            if not args.only_oidc_provider:
                ours_url = url if ours_on_pg else ""
                results += run_server("ours", lambda n: start_ours(n, ours_url), args)
            if not args.only_ours:
                op_url = (
                    oidc_provider.create_database(url, oidc_provider.OP_DATABASE)
                    if peer_on_pg
                    else ""
                )

                def start_peer(workers: int) -> Target:
                    return oidc_provider.start(workers, args.op_adapter, op_url)

                results += run_server("oidc-provider", start_peer, args)
    except NotImplementedError as exc:
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted; everything this run started has been stopped") from None
    print_table(results, args)


if __name__ == "__main__":
    main()
