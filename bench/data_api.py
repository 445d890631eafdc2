"""Vendor data API reads: our server beside the Community Solid Server.

    python -m bench.data_api [--only-ours | --only-solid] [--workers N]
                             [--concurrency 1,8,32] [--seconds 10] [--warmup 2]
                             [--quick] [--quiet-wait 60] [--phases reads,feed]
                             [--customers 100000] [--page 1000] [--sqlite]

Phase ``reads``: authorized GETs of one customer's ~1 KB permitted view
(``GET /v1/data`` with a Bearer token from the real authorization code flow,
scope ``profile:read preferences:read``) beside authorized GETs of a pod
resource holding the very same bytes on the Community Solid Server (file
backend, owner-only ACL, Bearer token from client credentials). Every
concurrency level runs on both servers, one after the other, for the same
time after the same warm-up; the table gives requests, req/s, p50, p99,
errors and CPU, then the ratios ours / Solid and whether the goal (10x the
throughput, a tenth of the p99) is met. See bench/README.md.

Phase ``feed``: a vendor syncing ``--customers`` (100,000) customers through
``GET /v1/feed`` on PostgreSQL, first from the start and then incrementally;
records per second and page latency (bench/feed.py, which also runs alone).

Phases are registered in ``PHASES``; each starts what it needs and prints its
own table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator

import httpx

from bench import feed
from bench.lib import ours
from bench.lib.load import Run, Target, Token, measure
from bench.lib.machine import CPU_NOTE, wait_quiet
from bench.lib.people import PREFERENCES, PROFILE, canonical_json
from bench.lib.solid import SolidServer

SCOPE = "profile:read preferences:read"
SOLID_RESOURCE = "vrm-view.json"

# -- our server ------------------------------------------------------------------


@contextlib.contextmanager
def ours_target(workers: int) -> Iterator[tuple[Target, bytes]]:
    """Our server with one customer who filled in everything and granted
    SCOPE to the bench vendor; yields the target and the view's bytes."""
    # ours.start() makes its data folder and stop() removes it.
    server = ours.start(workers)
    try:
        yield _seed_ours(server.base_url, server.client_id, server.client_secret, server.pid)
    finally:
        server.stop()


def _seed_ours(base: str, client_id: str, secret: str, pid: int) -> tuple[Target, bytes]:
    """A customer who fills in everything and grants SCOPE through the
    consent form; the vendor's view of them, checked to need a token."""
    with httpx.Client(base_url=base) as browser:
        ours.sign_up(browser, "bench-view")
        browser.put("/api/v1/me/profile", json=PROFILE).raise_for_status()
        browser.put("/api/v1/me/preferences", json=PREFERENCES).raise_for_status()
        first = ours.authorize(browser, client_id, secret, SCOPE)
    refresh = [first["refresh_token"]]
    issued = [first]

    def renew() -> Token:
        if issued:  # the code exchange's own access token, once
            answer = issued.pop()
        else:
            reply = httpx.post(
                f"{base}/oauth/token",
                data={"grant_type": "refresh_token", "refresh_token": refresh[0]},
                auth=(client_id, secret),
            )
            reply.raise_for_status()
            answer = reply.json()
            refresh[0] = answer["refresh_token"]
        return Token(answer["access_token"], time.time() + int(answer["expires_in"]))

    with httpx.Client(base_url=base) as vendor:
        refused = vendor.get("/v1/data")
        if refused.status_code != 401:
            raise RuntimeError(f"ours: GET /v1/data without a token gave {refused.status_code}")
        target = Target("ours", base, "/v1/data", 0, pid, renew)
        view = vendor.get("/v1/data", headers={"Authorization": f"Bearer {target.token.value}"})
        view.raise_for_status()
    target.size = len(view.content)
    return target, view.content


# -- the Community Solid Server --------------------------------------------------


@contextlib.contextmanager
def solid_target(body: bytes) -> Iterator[Target]:
    """A pod holding ``body`` as an owner-only JSON resource, read with the
    owner's Bearer token."""
    server = SolidServer()
    try:
        base = server.base_url.rstrip("/")
        target = Target("solid", base, "", len(body), server.pid, server.token)
        target.path = server.put(SOLID_RESOURCE, body, target.token)
        authorized = {"Authorization": f"Bearer {target.token.value}"}
        with httpx.Client(base_url=target.base_url) as client:
            refused = client.get(target.path)
            if refused.status_code != 401:
                raise RuntimeError(f"solid: GET without a token gave {refused.status_code}")
            read = client.get(target.path, headers=authorized)
            read.raise_for_status()
            if read.content != body:
                raise RuntimeError(f"solid: read back {len(read.content)} bytes, not our body")
        yield target
    finally:
        server.stop()


# -- phase "reads" -----------------------------------------------------------------


def reads(args: argparse.Namespace) -> None:
    """Both servers up, then each concurrency level on ours and on Solid in
    turn, so drifting background load touches both alike."""
    with contextlib.ExitStack() as stack:
        targets: list[Target] = []
        if args.only_solid:
            # No server of ours to ask: a view of the same shape and size.
            body = canonical_json(
                {
                    "subject": "s" * 43,
                    "grant_id": "0" * 32,
                    "purpose": ours.PURPOSE,
                    "profile": PROFILE,
                    "preferences": PREFERENCES,
                }
            )
        else:
            print(f"starting ours ({args.workers} uvicorn worker(s)) ...", flush=True)
            target, body = stack.enter_context(ours_target(args.workers))
            targets.append(target)
        if not args.only_ours:
            print("starting the Community Solid Server ...", flush=True)
            targets.append(stack.enter_context(solid_target(body)))
        for target in targets:
            print(f"  {target.name}: GET {target.path} -> {target.size} bytes", flush=True)
        runs: list[Run] = []
        for concurrency in args.concurrency:
            for target in targets:
                wait_quiet(args.quiet_wait)
                print(f"  {target.name}: concurrency {concurrency} ...", flush=True)
                runs.append(measure(target, concurrency, args.warmup, args.seconds))
    print_reads(runs, targets, args)


def print_reads(runs: list[Run], targets: list[Target], args: argparse.Namespace) -> None:
    print()
    print(
        f"data API reads: {args.seconds:g} s per run after {args.warmup:g} s warm-up,"
        f" ours with {args.workers} uvicorn worker(s), Solid single process,"
        f" {os.cpu_count()} CPUs"
    )
    for t in targets:
        print(f"  {t.name:<6} GET {t.path}  {t.size} bytes, Bearer token")
    header = (
        f"{'server':<8}{'conc':>5}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'srv CPU':>9}{'cli CPU':>9}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in runs:
        print(
            f"{r.server:<8}{r.concurrency:>5}{r.ok:>10}{r.rps:>9.0f}{r.p50:>9.2f}{r.p99:>9.2f}"
            f"{r.errors:>8}{r.server_cpu:>9.0%}{r.client_cpu:>9.0%}{r.other_cpu:>7.0%}"
        )
    print(CPU_NOTE)
    for r in runs:
        for sample in r.samples:
            print(f"  {r.server} c={r.concurrency} error: {sample}")
    by = {(r.server, r.concurrency): r for r in runs}
    pairs = [(by.get(("ours", c)), by.get(("solid", c)), c) for c in args.concurrency]
    if not any(o and s for o, s, _ in pairs):
        return
    print()
    print(f"{'ours / solid':<14}{'req/s':>9}{'p99':>9}   goal: >= 10x req/s and <= 0.1x p99")
    for o, s, c in pairs:
        if o is None or s is None or not s.rps or not s.p99:
            continue
        rps, p99 = o.rps / s.rps, o.p99 / s.p99
        met = "met" if rps >= 10 and p99 <= 0.1 else "not met"
        print(f"{'c=' + str(c):<14}{rps:>8.2f}x{p99:>8.3f}x   {met}")


# -- main ----------------------------------------------------------------------------

# Each phase starts what it needs, measures, prints its table and stops it all.
PHASES: dict[str, Callable[[argparse.Namespace], None]] = {
    "reads": reads,
    # A vendor syncing --customers (100,000) customers through GET /v1/feed
    # on PostgreSQL: bench/feed.py. Seeding alone takes about 15 minutes here.
    "feed": feed.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    side = parser.add_mutually_exclusive_group()
    side.add_argument("--only-ours", action="store_true")
    side.add_argument("--only-solid", action="store_true")
    parser.add_argument("--workers", type=int, default=1, help="our uvicorn workers")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated levels")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured load first")
    parser.add_argument("--quick", action="store_true", help="2 s runs after 0.5 s warm-up")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this long for the machine to be idle (0: don't)",
    )
    parser.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset")
    feed.add_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 2.0, 0.5
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes comma-separated integers")
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs levels of 1 or more")
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        for phase in phases:
            PHASES[phase](args)
    except KeyboardInterrupt:
        raise SystemExit("interrupted; everything this run started has been stopped") from None


if __name__ == "__main__":
    main()
