"""What customer-held keys (issue 19) cost: a log-in, a vendor read, a
token refresh and the feed's first sync, against ``--baseline``, a checkout
of the code before them.

    git worktree add /tmp/base 273c4da
    python -m bench.keys --baseline /tmp/base [--postgres] [--rounds 3]
                         [--seconds 10] [--concurrency 8] [--feed-customers 100]

The two servers run in turn, ``--rounds`` times each, alternating, on the
same database kind: the baseline's (every root key in the key store) and
this checkout's with ``VRM_KEY_CUSTODY=customer`` (every customer's root key
their own; a grant escrows what it reads). Each round, on a fresh server:

- ``login``: the bench customer logs in again and again (``POST
  /api/v1/session``), at 2 connections: one Argon2id run each, at the
  server's default cost (t=3, 64 MiB, p=4), and on this checkout the root
  key unwrapped and sealed for the session.
- ``read``: a vendor's ``GET /v1/data`` of a customer with a full profile,
  preferences and 50 history events who granted ``profile:read
  preferences:read history:read`` and then logged out: on this checkout
  the data keys open from the grant's escrow.
- ``refresh``: the vendor refreshing its tokens (``grant_type=refresh_token``).
- ``feed``: ``--feed-customers`` customers, each with a full profile and
  preferences and 20 events and a grant of the three categories, all logged
  out; the vendor reads its feed from the start (client credentials, pages
  of 1,000) once: items per second.

Goal (the issue): each within 10 % of the baseline. The table gives the
medians and the ratio; the raw rounds follow as JSON.

Left out: several workers and a million customers (issue 20); the
first-party command line's refresh (its tokens also carry the root key:
one more AES-GCM open and two seals per refresh).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.audit import cost_table, empty_database, server
from bench.data_api import fill_in, target_of
from bench.lib import callgrind, ours
from bench.lib.load import Run, measure
from bench.lib.machine import CPU_NOTE, free_port, wait_quiet
from bench.lib.people import PREFERENCES, PROFILE, history
from bench.lib.seed import FAST_HASH
from bench.lib.token_load import PhaseResult, run_phase
from bench.lib.token_load import Target as TokenTarget

SCOPE = "profile:read preferences:read history:read"
FEED_EVENTS = 20
# Nothing runs on the server's timers while its instructions are counted.
QUIET = {
    "VRM_BACKGROUND_JOBS": "false",
    "VRM_AUDIT_CHECKPOINT_SECONDS": "0",
    "VRM_NOTICE_INTERVAL_SECONDS": "0",
    "VRM_PURGE_INTERVAL_SECONDS": "0",
}


def _logins(base: str, account: dict[str, str], seconds: float, connections: int) -> float:
    """Log-ins per second over ``seconds`` at ``connections`` at once."""
    done = [0] * connections
    deadline = time.monotonic() + seconds

    def loop(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while time.monotonic() < deadline:
                http.post("/api/v1/session", json=account).raise_for_status()
                done[n] += 1

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def _customer(started: ours.Ours, tag: str, events: int) -> None:
    """A customer who filled everything in, granted SCOPE and logged out."""
    with httpx.Client(base_url=started.base_url, timeout=60) as browser:
        ours.sign_up(browser, tag)
        browser.put("/api/v1/me/profile", json=PROFILE).raise_for_status()
        browser.put("/api/v1/me/preferences", json=PREFERENCES).raise_for_status()
        for event in history(events):
            browser.post("/api/v1/me/history", json=event).raise_for_status()
        ours.authorize(browser, started.client_id, started.client_secret, SCOPE)
        browser.delete("/api/v1/session").raise_for_status()


def _feed(started: ours.Ours, customers: int) -> float:
    for n in range(customers):
        _customer(started, f"feed-{n}", FEED_EVENTS)
    began = time.perf_counter()
    items = _read_feed(started)
    return items / (time.perf_counter() - began)


def _read_feed(started: ours.Ours) -> int:
    """The vendor's whole feed read from the start: how many items."""
    token = httpx.post(
        f"{started.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read"},
        auth=(started.client_id, started.client_secret),
    )
    token.raise_for_status()
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    items, cursor = 0, None
    with httpx.Client(base_url=started.base_url, timeout=600) as client:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor is not None:
                params["cursor"] = cursor
            r = client.get("/v1/feed", params=params, headers=bearer)
            r.raise_for_status()
            page = r.json()
            items += len(page["items"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                break
    return items


def _round(
    source: Path | None, args: argparse.Namespace, database_url: str, **settings: str
) -> dict[str, Any]:
    with server(source, database_url, **settings) as started:
        base = started.base_url
        account = {"email": f"login-{time.monotonic_ns()}@example.org", "password": ours.PASSWORD}
        httpx.post(f"{base}/api/v1/accounts", json=account).raise_for_status()
        wait_quiet(args.quiet_wait)
        logins = _logins(base, account, args.seconds, 2)
        with httpx.Client(base_url=base, timeout=60) as browser:
            first = fill_in(started, browser, "bench-keys", SCOPE, 50)
            browser.delete("/api/v1/session").raise_for_status()
        target, _ = target_of(started, first, "/v1/data")
        wait_quiet(args.quiet_wait)
        read: Run = measure(target, args.concurrency, args.warmup, args.seconds)
        tokens = TokenTarget(
            base,
            started.token_path,
            started.client_id,
            started.client_secret,
            started.refresh_tokens,
            lambda: None,
            cc_scope="feed:read",
            pid=started.pid,
        )
        wait_quiet(args.quiet_wait)
        refresh: PhaseResult = run_phase("ours", tokens, "refresh_token", args)
        feed = _feed(started, args.feed_customers) if args.feed_customers else float("nan")
    return {
        "login_per_s": logins,
        "read_rps": read.rps,
        "read_p99_ms": read.p99,
        "refresh_rps": refresh.rps,
        "feed_items_per_s": feed,
    }


def _counted(
    source: Path | None, args: argparse.Namespace, database_url: str, **settings: str
) -> dict[str, float]:
    """Instructions the server executes per vendor read, per refresh and per
    feed item, counted by callgrind (bench/lib/callgrind.py), on a server
    run from ``source`` (this checkout if None) with no background work."""
    if database_url:
        empty_database(database_url)
    data = Path(tempfile.mkdtemp(prefix="vrm-bench-keys-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = ours.env_for(data, base, database_url, **QUIET, **FAST_HASH, **settings)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    try:
        vendor = ours.init(env, "Bench Vendor")
        with (
            callgrind.serve(env, port, data, cwd=source) as server,
            httpx.Client(base_url=base, timeout=600) as browser,
        ):
            started = ours.Ours(
                base, "/oauth/token", vendor["client_id"], vendor["client_secret"],
                lambda: None, server.pid, browser,
            )  # fmt: skip
            first = fill_in(started, browser, "bench-keys", SCOPE, 50)
            browser.delete("/api/v1/session").raise_for_status()
            n = args.count
            bearer = {"Authorization": f"Bearer {first['access_token']}"}
            refresh = [first["refresh_token"]]

            def reads() -> None:
                for _ in range(n):
                    browser.get("/v1/data", headers=bearer).raise_for_status()

            def refreshes() -> None:
                for _ in range(n):
                    answer = browser.post(
                        "/oauth/token",
                        data={"grant_type": "refresh_token", "refresh_token": refresh[0]},
                        auth=(started.client_id, started.client_secret),
                    )
                    answer.raise_for_status()
                    refresh[0] = answer.json()["refresh_token"]

            browser.get("/v1/data", headers=bearer).raise_for_status()  # warm
            per_read = server.count(reads) / n
            per_refresh = server.count(refreshes) / n
            for c in range(args.feed_customers):
                _customer(started, f"feed-{c}", FEED_EVENTS)
            items = [0]
            per_item = server.count(lambda: items.__setitem__(0, _read_feed(started)))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {
        "read": per_read,
        "refresh": per_refresh,
        "feed_item": per_item / max(items[0], 1),
    }


def _alternate(
    args: argparse.Namespace, run: Callable[..., dict[str, Any]], how: str = ""
) -> dict[str, list[dict[str, Any]]]:
    """``run(source, **settings)`` for the baseline, then for this checkout
    with customer-held keys, ``args.rounds`` times: each side's results."""
    sides: dict[str, list[dict[str, Any]]] = {"baseline": [], "customer-held": []}
    for n in range(args.rounds):
        print(f"  round {n + 1}: baseline{how} ...", flush=True)
        sides["baseline"].append(run(args.baseline))
        print(f"  round {n + 1}: customer-held{how} ...", flush=True)
        sides["customer-held"].append(run(None, VRM_KEY_CUSTODY="customer"))
    return sides


def instructions(args: argparse.Namespace, database_url: str) -> None:
    sides = _alternate(
        args,
        lambda source, **settings: _counted(source, args, database_url, **settings),
        " (under callgrind)",
    )
    kind = "PostgreSQL" if database_url else "SQLite"
    print(
        f"\ncustomer-held keys on {kind}: server instructions (millions), medians of "
        f"{args.rounds} rounds, {args.count} requests each (the database server's own "
        "work not counted)"
    )
    millions = {
        side: [{k: v / 1e6 for k, v in r.items()} for r in rounds] for side, rounds in sides.items()
    }
    cost_table(
        millions["baseline"],
        millions["customer-held"],
        "held",
        [
            ("read", "per vendor read (50 events)", False),
            ("refresh", "per refresh", False),
            ("feed_item", f"per feed item ({args.feed_customers} customers)", False),
        ],
    )
    print(json.dumps(sides))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout from before")
    parser.add_argument("--postgres", action="store_true", help="the servers on PostgreSQL")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--feed-customers", type=int, default=100)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count the server's instructions under callgrind instead of timing it",
    )
    parser.add_argument("--count", type=int, default=100, help="requests counted (--instructions)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        database_url = ""
        if args.postgres:
            from tests.pgserver import postgres_cluster

            database_url = stack.enter_context(postgres_cluster())
        if args.instructions:
            instructions(args, database_url)
            return
        sides = _alternate(
            args, lambda source, **settings: _round(source, args, database_url, **settings)
        )
    kind = "PostgreSQL" if database_url else "SQLite"
    print(
        f"\ncustomer-held keys on {kind}: medians of {args.rounds} alternating rounds, "
        f"{args.concurrency} connections, {args.seconds:g} s each"
    )
    cost_table(
        sides["baseline"],
        sides["customer-held"],
        "held",
        [
            ("login_per_s", "log-ins/s (2 connections)", True),
            ("read_rps", "vendor read req/s (50 events)", True),
            ("read_p99_ms", "vendor read p99 ms", False),
            ("refresh_rps", "refresh req/s", True),
            ("feed_items_per_s", f"feed items/s ({args.feed_customers} customers)", True),
        ],
    )
    print(json.dumps(sides))
    print(CPU_NOTE)


if __name__ == "__main__":
    main()
