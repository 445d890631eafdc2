"""Large histories: what reading a customer with hundreds of events costs,
and whether it holds up everyone else.

    python -m bench.history [--events 500] [--seconds 10] [--warmup 2]
                            [--concurrency 8] [--workers 1]

Starts our server (SQLite, one uvicorn worker unless --workers) as an
operator would, and seeds through the public API: a customer with a filled-in
profile and preferences and ``--events`` (500) realistic history events
(bench.lib.people.history: items, amounts, notes, some ``gift``, one
``private``) who grants the bench vendor ``profile:read preferences:read
history:read``, and a customer with profile and preferences only who grants
``profile:read preferences:read``. Then, one measurement after another:

- ``pages``: the vendor walks the large history through
  ``GET /v1/data/history?limit=100``, from the start to the end, over and
  over for ``--seconds``, one request at a time;
- ``whole``: ``GET /v1/data`` of the large customer (every event in one
  answer), one client;
- ``label``: the customer's own ``GET /api/v1/me/history?label=gift``
  (the first page of 50), one client;
- ``stall``: ``--concurrency`` clients reading the profile-only view, first
  alone and then beside one client reading the large ``GET /v1/data`` in a
  loop; the goal is a p99 of the profile-only reads within 2x of alone.

For each it prints requests, req/s, p50 and p99, and the server's CPU time
per request and per stored event (CPU, not wall time: the load generator
shares the machine). Last, the server's resident memory. Not measured:
PostgreSQL (see bench/feed.py and bench/data_api.py), several workers.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx

from bench.data_api import fill_in, seed_customer, target_of
from bench.lib import ours
from bench.lib.load import Run, Target, measure, measure_together
from bench.lib.machine import CPU_NOTE, cpu_of, memory_of, percentile, tree_pids, wait_quiet

FULL = "profile:read preferences:read history:read"
PROFILE_ONLY = "profile:read preferences:read"
PAGE = 100


@dataclass
class Figure:
    name: str
    requests: int
    seconds: float
    p50: float  # ms
    p99: float  # ms
    server_cpu: float  # seconds over the run
    events: int  # stored events each request covers

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request_us(self) -> float:
        return self.server_cpu / self.requests * 1e6 if self.requests else 0.0

    @property
    def cpu_per_event_us(self) -> float:
        return self.cpu_per_request_us / self.events if self.events else 0.0


@dataclass
class Big:
    """The large customer: their browser (signed in), the vendor's target
    of their whole view, and a fresh access token for the paging walk."""

    browser: httpx.Client
    whole: Target
    token: Callable[[], str]


@contextlib.contextmanager
def large_customer(server: ours.Ours, events: int) -> Iterator[Big]:
    browser = httpx.Client(base_url=server.base_url, timeout=120)
    try:
        first = fill_in(server, browser, "bench-large", FULL, events)
        whole, _ = target_of(server, first, "/v1/data")
        yield Big(browser, whole, lambda: whole.token.value)
    finally:
        browser.close()


def _loop(
    name: str, pid: int, seconds: float, warmup: float, events: int, once: Callable[[], int]
) -> Figure:
    """``once`` over and over: warm-up, then ``seconds`` measured; ``once``
    returns how many requests it made."""
    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        once()
    pids = tree_pids(pid)
    latencies: list[float] = []
    requests = 0
    cpu = cpu_of(pids)
    start = time.perf_counter()
    end = start + seconds
    while (t0 := time.perf_counter()) < end:
        made = once()
        latencies.append((time.perf_counter() - t0) / made)
        requests += made
    elapsed = time.perf_counter() - start
    cpu = cpu_of(pids) - cpu
    latencies.sort()
    return Figure(
        name,
        requests,
        elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        cpu,
        events,
    )


def pages(big: Big, pid: int, args: argparse.Namespace) -> Figure:
    """The whole history through ``/v1/data/history?limit=100``, page by
    page; latencies are per page (a walk's mean), costs per stored event."""
    shown = args.events - 1  # the private one is never shown
    with httpx.Client(base_url=big.whole.base_url, timeout=120) as vendor:

        def walk() -> int:
            cursor, seen, made = None, 0, 0
            while True:
                params: dict[str, str | int] = {"limit": PAGE}
                if cursor is not None:
                    params["since"] = cursor
                r = vendor.get(
                    "/v1/data/history",
                    params=params,
                    headers={"Authorization": f"Bearer {big.token()}"},
                )
                r.raise_for_status()
                body = r.json()
                made += 1
                seen += len(body["history"])
                cursor = body["next_cursor"]
                if not body["has_more"]:
                    break
            if seen != shown:
                raise RuntimeError(f"the walk saw {seen} events, not {shown}")
            return made

        walk()
        figure = _loop("pages", pid, args.seconds, args.warmup, 0, walk)
    # Per event: every page of a walk together covers the stored events.
    figure.events = max(1, -(-args.events // PAGE))
    figure.events = args.events // figure.events
    return figure


def label(big: Big, pid: int, args: argparse.Namespace) -> Figure:
    def once() -> int:
        r = big.browser.get("/api/v1/me/history", params={"label": "gift"})
        r.raise_for_status()
        if not r.json()["items"]:
            raise RuntimeError("no gift in the history")
        return 1

    return _loop("label=gift", pid, args.seconds, args.warmup, args.events, once)


def _figure(name: str, run: Run, seconds: float, events: int) -> Figure:
    return Figure(name, run.ok, seconds, run.p50, run.p99, run.server_cpu * seconds, events)


def run(args: argparse.Namespace) -> None:
    print(f"starting ours ({args.workers} uvicorn worker(s)) ...", flush=True)
    server = ours.start(args.workers)
    figures: list[Figure] = []
    stall: list[Run] = []
    try:
        small, _ = seed_customer(server, PROFILE_ONLY, 0)
        print(f"seeding a customer with {args.events} events ...", flush=True)
        with large_customer(server, args.events) as big:
            print(f"  whole view: {big.whole.size} bytes", flush=True)
            wait_quiet(args.quiet_wait)
            figures.append(pages(big, server.pid, args))
            wait_quiet(args.quiet_wait)
            whole = measure(big.whole, 1, args.warmup, args.seconds)
            figures.append(_figure("whole", whole, args.seconds, args.events))
            wait_quiet(args.quiet_wait)
            figures.append(label(big, server.pid, args))
            wait_quiet(args.quiet_wait)
            alone = measure(small, args.concurrency, args.warmup, args.seconds)
            wait_quiet(args.quiet_wait)
            beside = measure_together(
                [(small, args.concurrency), (big.whole, 1)], args.warmup, args.seconds
            )
            stall = [alone, *beside]
            rss, peak = memory_of(tree_pids(server.pid))
    finally:
        server.stop()
    print_figures(figures, stall, rss, peak, args)


def print_figures(
    figures: list[Figure], stall: list[Run], rss: float, peak: float, args: argparse.Namespace
) -> None:
    print()
    print(
        f"large history: one customer with {args.events} events, {args.seconds:g} s per run"
        f" after {args.warmup:g} s warm-up, {args.workers} uvicorn worker(s), SQLite"
    )
    header = (
        f"{'read':<12}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU/req us':>12}{'CPU/event us':>14}"
    )
    print(header)
    print("-" * len(header))
    for f in figures:
        print(
            f"{f.name:<12}{f.requests:>9}{f.rps:>8.0f}{f.p50:>9.2f}{f.p99:>9.2f}"
            f"{f.cpu_per_request_us:>12.0f}{f.cpu_per_event_us:>14.1f}"
        )
    print(
        "  CPU/event: the server's CPU per request over the stored events it covers"
        f" (pages: {PAGE} a page; whole and label=gift: all {args.events})"
    )
    alone, beside, big = stall
    print()
    print(f"profile-only reads at concurrency {args.concurrency}, alone and beside one client")
    print(f"reading the {args.events}-event view in a loop:")
    print(f"{'':<22}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in (("alone", alone), ("beside", beside), ("the large reader", big)):
        print(f"{name:<22}{r.rps:>8.0f}{r.p50:>9.2f}{r.p99:>9.2f}{r.errors:>8}")
    ratio = beside.p99 / alone.p99 if alone.p99 else float("inf")
    met = "met" if ratio <= 2 else "not met"
    print(f"p99 beside / alone: {ratio:.2f}x   goal: <= 2x   {met}")
    print(CPU_NOTE)
    print(f"server resident memory after the runs: {rss:.0f} MiB (peak {peak:.0f} MiB)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=500, help="events of the large customer")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=8, help="profile-only readers")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="2 s runs after 0.5 s warm-up")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 2.0, 0.5
    run(args)


if __name__ == "__main__":
    main()
