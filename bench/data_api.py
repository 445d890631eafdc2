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
from bench.lib.people import PREFERENCES, PROFILE, canonical_json, history
from bench.lib.solid import SolidServer

# The two views read: a realistic customer's, with a history of 50 events,
# and the profile-only view of a customer without one, side by side.
VIEWS = {
    "history": ("profile:read preferences:read history:read", 50),
    "profile": ("profile:read preferences:read", 0),
}
EVENTS = 50

# -- our server ------------------------------------------------------------------


@contextlib.contextmanager
def ours_target(workers: int) -> Iterator[dict[str, tuple[Target, bytes]]]:
    """Our server with one customer per view, each of whom filled in
    everything (and, for ``history``, added EVENTS events) and granted the
    view's scope to the bench vendor; yields each view's target and bytes."""
    # ours.start() makes its data folder and stop() removes it.
    server = ours.start(workers)
    try:
        yield {
            view: seed_customer(server, scope, events) for view, (scope, events) in VIEWS.items()
        }
    finally:
        server.stop()


def seed_customer(server: ours.Ours, scope: str, events: int) -> tuple[Target, bytes]:
    """A customer who fills in everything, adds ``events`` history events
    (bench.lib.people.history) and grants ``scope`` through the consent
    form; the vendor's view of them, checked to need a token."""
    with httpx.Client(base_url=server.base_url) as browser:
        first = fill_in(server, browser, "bench-view", scope, events)
    return target_of(server, first, "/v1/data")


def fill_in(
    server: ours.Ours, browser: httpx.Client, tag: str, scope: str, events: int
) -> dict[str, str]:
    """Sign ``browser`` up as a customer who fills in every field of the
    profile and preferences and adds ``events`` history events, then grants
    ``scope``; the token response."""
    ours.sign_up(browser, tag)
    browser.put("/api/v1/me/profile", json=PROFILE).raise_for_status()
    browser.put("/api/v1/me/preferences", json=PREFERENCES).raise_for_status()
    for event in history(events):
        browser.post("/api/v1/me/history", json=event).raise_for_status()
    return ours.authorize(browser, server.client_id, server.client_secret, scope)


def target_of(server: ours.Ours, first: dict[str, str], path: str) -> tuple[Target, bytes]:
    """A target reading ``path`` with the tokens of one grant: the code
    exchange's ``first`` answer, then refreshes; and the body it reads now."""
    base, client_id, secret = server.base_url, server.client_id, server.client_secret
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
        refused = vendor.get(path)
        if refused.status_code != 401:
            raise RuntimeError(f"ours: GET {path} without a token gave {refused.status_code}")
        target = Target("ours", base, path, 0, server.pid, renew)
        view = vendor.get(path, headers={"Authorization": f"Bearer {target.token.value}"})
        view.raise_for_status()
    target.size = len(view.content)
    return target, view.content


# -- the Community Solid Server --------------------------------------------------


@contextlib.contextmanager
def solid_server() -> Iterator[SolidServer]:
    server = SolidServer()
    try:
        yield server
    finally:
        server.stop()


def solid_target(server: SolidServer, view: str, body: bytes) -> Target:
    """The pod's owner-only JSON resource for ``view``, holding ``body``,
    read with the owner's Bearer token."""
    base = server.base_url.rstrip("/")
    target = Target("solid", base, "", len(body), server.pid, server.token)
    target.path = server.put(f"vrm-view-{view}.json", body, target.token)
    authorized = {"Authorization": f"Bearer {target.token.value}"}
    with httpx.Client(base_url=target.base_url) as client:
        refused = client.get(target.path)
        if refused.status_code != 401:
            raise RuntimeError(f"solid: GET without a token gave {refused.status_code}")
        read = client.get(target.path, headers=authorized)
        read.raise_for_status()
        if read.content != body:
            raise RuntimeError(f"solid: read back {len(read.content)} bytes, not our body")
    return target


# -- phase "reads" -----------------------------------------------------------------


def reads(args: argparse.Namespace) -> None:
    """Both servers up, each view (VIEWS) on each, then each concurrency
    level on ours and on Solid in turn, so drifting background load touches
    both alike."""
    with contextlib.ExitStack() as stack:
        targets: list[tuple[str, Target]] = []
        if args.only_solid:
            # No server of ours to ask: views of the same shape and size.
            bodies = {view: _view_like(events) for view, (_, events) in VIEWS.items()}
        else:
            print(f"starting ours ({args.workers} uvicorn worker(s)) ...", flush=True)
            seeded = stack.enter_context(ours_target(args.workers))
            bodies = {view: body for view, (_, body) in seeded.items()}
            targets += [(view, target) for view, (target, _) in seeded.items()]
        if not args.only_ours:
            print("starting the Community Solid Server ...", flush=True)
            server = stack.enter_context(solid_server())
            targets += [(view, solid_target(server, view, body)) for view, body in bodies.items()]
        for view, target in targets:
            print(f"  {target.name} {view}: GET {target.path} -> {target.size} bytes", flush=True)
        runs: dict[tuple[str, str, int], Run] = {}
        for concurrency in args.concurrency:
            for view, target in targets:
                wait_quiet(args.quiet_wait)
                print(f"  {target.name} {view}: concurrency {concurrency} ...", flush=True)
                run = measure(target, concurrency, args.warmup, args.seconds)
                runs[(view, target.name, concurrency)] = run
    print_reads(runs, targets, args)


def _view_like(events: int) -> bytes:
    """A view of the same shape and size as ours, for --only-solid."""
    body: dict[str, object] = {
        "subject": "s" * 43,
        "grant_id": "0" * 32,
        "purpose": ours.PURPOSE,
        "profile": PROFILE,
        "preferences": PREFERENCES,
    }
    if events:
        shown = [e for e in history(events) if "private" not in e["labels"]]
        body["history"] = [{"id": "e" * 24, **e} for e in reversed(shown)]
    return canonical_json(body)


def print_reads(
    runs: dict[tuple[str, str, int], Run],
    targets: list[tuple[str, Target]],
    args: argparse.Namespace,
) -> None:
    print()
    print(
        f"data API reads: {args.seconds:g} s per run after {args.warmup:g} s warm-up,"
        f" ours with {args.workers} uvicorn worker(s), Solid single process,"
        f" {os.cpu_count()} CPUs"
    )
    for view, t in targets:
        print(f"  {t.name:<6} {view:<8} GET {t.path}  {t.size} bytes, Bearer token")
    header = (
        f"{'view':<9}{'server':<7}{'conc':>5}{'requests':>10}{'req/s':>9}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'errors':>8}{'srv CPU':>9}{'cli CPU':>9}{'other':>7}"
    )
    print(header)
    print("-" * len(header))
    for (view, _, _), r in runs.items():
        print(
            f"{view:<9}{r.server:<7}{r.concurrency:>5}{r.ok:>10}{r.rps:>9.0f}{r.p50:>9.2f}"
            f"{r.p99:>9.2f}{r.errors:>8}{r.server_cpu:>9.0%}{r.client_cpu:>9.0%}"
            f"{r.other_cpu:>7.0%}"
        )
    print(CPU_NOTE)
    for r in runs.values():
        for sample in r.samples:
            print(f"  {r.server} c={r.concurrency} error: {sample}")
    pairs = [
        (view, c, runs.get((view, "ours", c)), runs.get((view, "solid", c)))
        for view in VIEWS
        for c in args.concurrency
    ]
    if not any(o and s for _, _, o, s in pairs):
        return
    print()
    print(f"{'ours / solid':<20}{'req/s':>9}{'p99':>9}   goal: >= 10x req/s and <= 0.1x p99")
    for view, c, o, s in pairs:
        if o is None or s is None or not s.rps or not s.p99:
            continue
        rps, p99 = o.rps / s.rps, o.p99 / s.p99
        met = "met" if rps >= 10 and p99 <= 0.1 else "not met"
        print(f"{view + ' c=' + str(c):<20}{rps:>8.2f}x{p99:>8.3f}x   {met}")


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
