"""The audit log's costs: appends per second, what it adds to a read and a
token refresh, and the time to verify a large bundle.

    python -m bench.audit [--phases appends,cost,verify] [--postgres]
                          [--baseline DIR] [--rounds 3] [--seconds 10] [--warmup 2]
                          [--concurrency 8] [--entries 1000000]

``appends``: our server with a customer whose history holds 50 events and
who granted a vendor ``profile:read preferences:read history:read
history:write``; then, each for ``--seconds`` at ``--concurrency``
connections: vendor reads (``GET /v1/data``), vendor deposits (``POST
/v1/history``), the customer shortening the grant (``PATCH
/api/v1/me/grants/{id}``), and the three at once. Every one of those
requests appends one entry; the table gives requests per second and the
entries the log grew by (its signed checkpoint's size, before and after).
The consent page's own grants are left out: a browser-driven form, one
entry each.

``cost``: what the log adds to a vendor read (the 50-event view) and to a
token refresh, against ``--baseline``, a checkout of the code before the
log (``git worktree add /tmp/base b02a124``). The two servers run in
turn, ``--rounds`` times each, alternating, on the same database kind;
the table gives the median req/s and server CPU per request of each and
the ratio. Goal: under 10 %.

``verify``: ``--entries`` (1,000,000) realistic entries (customers, grants,
token issues, reads) appended through ``consent.audit.log.append`` into a
fresh database, a checkpoint signed, the bundle exported, then ``vrm audit
verify``'s check timed alone. Goal: under 10 s.

Left out: several server workers (issue 20), and the witness round trip
(asynchronous to requests: the background signer's).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.data_api import fill_in, target_of
from bench.lib import ours
from bench.lib.load import Run, measure
from bench.lib.machine import CPU_NOTE, wait_quiet
from bench.lib.token_load import PhaseResult, run_phase
from bench.lib.token_load import Target as TokenTarget

SCOPE = "profile:read preferences:read history:read history:write"
GOAL = 0.10


# -- a server, from this checkout or the baseline's ---------------------------


@contextlib.contextmanager
def server(source: Path | None, database_url: str, **settings: str) -> Iterator[ours.Ours]:
    """Our server, run from ``source`` (a checkout) when given: its code
    comes first on the path of every process it starts. On PostgreSQL the
    database is emptied first: each server has keys of its own.
    ``settings``: more of its environment (bench/lib/ours.py, start)."""
    if database_url:
        empty_database(database_url)
    saved, here = os.environ.get("PYTHONPATH"), Path.cwd()
    if source is not None:
        # First on the path of `vrm` (PYTHONPATH) and of uvicorn (which puts
        # its working folder before it).
        os.environ["PYTHONPATH"] = str(source)
        os.chdir(source)
    try:
        started = ours.start(1, database_url, **settings)
    finally:
        os.chdir(here)
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    try:
        yield started
    finally:
        started.stop()


def empty_database(database_url: str) -> None:
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def log_size(started: ours.Ours) -> int:
    """The log's size: a checkpoint signed now, read back."""
    subprocess.run(
        [str(ours.BIN / "vrm"), "audit", "checkpoint"],
        env=started.env,
        check=True,
        capture_output=True,
    )
    note = httpx.get(f"{started.base_url}/audit/v1/checkpoint").text
    return int(note.split("\n")[1])


# -- appends -------------------------------------------------------------------


async def _loop(
    base: str,
    seconds: float,
    concurrency: int,
    request: Any,
    headers: dict[str, str],
    cookies: httpx.Cookies | None = None,
) -> int:
    done = 0
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, headers=headers, cookies=cookies) as http:
            i = 0
            while time.monotonic() < deadline:
                r = await request(http, n, i)
                i += 1
                if r.status_code in (200, 201):
                    done += 1

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return done


async def _deposit(http: httpx.AsyncClient, n: int, i: int) -> httpx.Response:
    event = {
        "vendor": "Bench Vendor",
        "type": "purchase",
        "occurred_at": "2026-11-01T10:00:00Z",
        "items": [{"name": "a book", "amount": "12.50"}],
        "currency": "EUR",
    }
    key = f"bench-{os.getpid()}-{n}-{i}-{time.monotonic_ns()}"
    return await http.post("/v1/history", json=event, headers={"Idempotency-Key": key})


def appends(args: argparse.Namespace, database_url: str) -> None:
    with server(None, database_url) as started:
        browser = httpx.Client(base_url=started.base_url)
        first = fill_in(started, browser, "bench-audit", SCOPE, 50)
        target, _ = target_of(started, first, "/v1/data")
        grant = browser.get("/api/v1/me/grants").json()["items"][0]["id"]
        expiry = [datetime.now(UTC) + timedelta(days=360)]

        async def shorten(http: httpx.AsyncClient, n: int, i: int) -> httpx.Response:
            expiry[0] -= timedelta(seconds=1)
            body = {"expires_at": expiry[0].isoformat()}
            return await http.patch(f"/api/v1/me/grants/{grant}", json=body)

        token = {"Authorization": f"Bearer {target.token.value}"}
        rows: list[tuple[str, float, int]] = []

        def timed(label: str, work: Any) -> None:
            """``work`` returns its requests per second."""
            wait_quiet(args.quiet_wait)
            before = log_size(started)
            rate = work()
            rows.append((label, rate, log_size(started) - before))

        c, seconds = args.concurrency, args.seconds
        base = started.base_url
        timed("reads", lambda: measure(target, c, args.warmup, seconds).rps)
        timed("deposits", lambda: asyncio.run(_loop(base, seconds, c, _deposit, token)) / seconds)
        timed(
            "grant changes",
            lambda: asyncio.run(_loop(base, seconds, c, shorten, {}, browser.cookies)) / seconds,
        )

        async def together() -> int:
            third = max(1, c // 3)
            counts = await asyncio.gather(
                _loop(started.base_url, args.seconds, third, _read_once(target), token),
                _loop(started.base_url, args.seconds, third, _deposit, token),
                _loop(started.base_url, args.seconds, third, shorten, {}, browser.cookies),
            )
            return sum(counts)

        timed("all three at once", lambda: asyncio.run(together()) / seconds)
        browser.close()
    kind = "PostgreSQL" if database_url else "SQLite"
    print(f"\naudit log appends on {kind}: {c} connections, {args.seconds:g} s each")
    print(f"{'writers':<20}{'requests/s':>11}{'entries added':>15}")
    for label, rate, added in rows:
        print(f"{label:<20}{rate:>11.0f}{added:>15}")
    print("(each request appends one entry; the reads' count includes their warm-up)")


def _read_once(target: Any) -> Any:
    async def read(http: httpx.AsyncClient, n: int, i: int) -> httpx.Response:
        return await http.get(target.path)

    return read


# -- cost ----------------------------------------------------------------------


def _cost_round(source: Path | None, args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    with server(source, database_url) as started:
        with httpx.Client(base_url=started.base_url) as browser:
            first = fill_in(started, browser, "bench-cost", SCOPE, 50)
        target, _ = target_of(started, first, "/v1/data")
        wait_quiet(args.quiet_wait)
        read: Run = measure(target, args.concurrency, args.warmup, args.seconds)
        tokens = TokenTarget(
            started.base_url,
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
    return {
        "read_rps": read.rps,
        "read_cpu_ms": 1000 * read.server_cpu / read.rps if read.rps else float("nan"),
        "refresh_rps": refresh.rps,
        "refresh_cpu_ms": (
            1000 * (refresh.server_cpu or 0) / refresh.rps if refresh.rps else float("nan")
        ),
    }


def cost_table(
    baseline: list[dict[str, Any]],
    head: list[dict[str, Any]],
    head_label: str,
    rows: list[tuple[str, str, bool]],
) -> None:
    """Each figure's median on both sides and what it costs: ``rows`` are
    (key, label, whether more is better). Goal: under :data:`GOAL`."""
    width = max(26, *(len(label) + 2 for _, label, _ in rows))
    print(f"{'figure':<{width}}{'baseline':>10}{head_label:>10}{'cost':>8}  goal < {GOAL:.0%}")
    for key, label, more_is_better in rows:
        before = statistics.median(r[key] for r in baseline)
        after = statistics.median(r[key] for r in head)
        extra = (before / after - 1) if more_is_better else (after / before - 1)
        met = "met" if extra < GOAL else "MISSED"
        print(f"{label:<{width}}{before:>10.2f}{after:>10.2f}{extra:>8.1%}  {met}")


def cost(args: argparse.Namespace, database_url: str) -> None:
    if args.baseline is None:
        print("\ncost: skipped (give --baseline DIR, a checkout of the code before the log)")
        return
    sides: dict[str, list[dict[str, Any]]] = {"log": [], "baseline": []}
    for n in range(args.rounds):
        for side, source in (("baseline", args.baseline), ("log", None)):
            print(f"  cost round {n + 1}: {side} ...", flush=True)
            sides[side].append(_cost_round(source, args, database_url))
    kind = "PostgreSQL" if database_url else "SQLite"
    print(
        f"\nwhat the log costs on {kind}: medians of {args.rounds} alternating rounds,"
        f" {args.concurrency} connections, {args.seconds:g} s each"
    )
    cost_table(
        sides["baseline"],
        sides["log"],
        "with log",
        [
            ("read_rps", "read req/s (50 events)", True),
            ("read_cpu_ms", "read server CPU ms/req", False),
            ("refresh_rps", "refresh req/s", True),
            ("refresh_cpu_ms", "refresh server CPU ms/req", False),
        ],
    )
    print(json.dumps(sides))
    print(CPU_NOTE)


# -- verify --------------------------------------------------------------------


def verify(args: argparse.Namespace) -> None:
    """Runs in this process on the code of this checkout."""
    from sqlmodel import Session

    from consent.audit import bundle, log, tree
    from consent.audit.entries import Event
    from consent.audit.note import Signer
    from vrm import migrate
    from vrm.accounts.models import Customer
    from vrm.db import make_engine
    from vrm.dbtypes import utcnow
    from vrm.settings import Settings

    folder = Path(tempfile.mkdtemp(prefix="vrm-bench-audit-"))
    try:
        settings = Settings(data_dir=folder)
        migrate.upgrade(settings)
        engine = make_engine(settings)
        customers = max(1, args.entries // 1000)
        now = utcnow()
        started = time.monotonic()
        with Session(engine) as session:
            for n in range(customers):
                session.add(
                    Customer(
                        id=f"c{n:08d}",
                        email_index=f"i{n}".encode(),
                        email_ct=b"",
                        key_version=1,
                        password_hash="not a hash: nobody logs in",  # noqa: S106
                        created_at=now,
                        password_changed_at=now,
                    )
                )
            session.commit()
        per = args.entries // customers
        written = 0
        scopes = ["history:read", "preferences:read", "profile.email:read"]
        for n in range(customers):
            cid, grant = f"c{n:08d}", f"g{n:08d}"
            common = {"customer_id": cid, "vendor_id": "vnd_bench", "grant_id": grant}
            events = [
                Event(
                    type="consent.granted",
                    at=now,
                    details={
                        "by": "customer",
                        "purpose": "dpv:ServiceProvision",
                        "scopes": scopes,
                        "expires_at": "2027-12-01T00:00:00Z",
                    },
                    **common,
                ),
                Event(
                    type="token.issued",
                    at=now,
                    details={"grant_type": "authorization_code", "family": "f" * 32},
                    **common,
                ),
            ]
            events += [
                Event(
                    type="data.read",
                    at=now,
                    details={
                        "via": "data",
                        "purpose": "dpv:ServiceProvision",
                        "categories": ["profile", "preferences", "history"],
                        "fields": ["history", "preferences.communication", "profile.email"],
                    },
                    personal={"subject": f"s{n}"},
                    **common,
                )
                for _ in range(per - 2)
            ]
            with engine.begin() as conn:
                log.append(conn, events)
            written += len(events)
        appended = time.monotonic() - started
        signer = Signer("bench.example/audit", bytes(range(32)))
        started = time.monotonic()
        if tree.sign_checkpoint(engine, signer) is None:
            raise RuntimeError("no checkpoint was signed")
        signed = time.monotonic() - started
        started = time.monotonic()
        bundle.export(engine, folder / "bundle", verifier_key=signer.verifier_key())
        exported = time.monotonic() - started
        engine.dispose()
        wait_quiet(args.quiet_wait)
        started = time.monotonic()
        report = bundle.verify(folder / "bundle")
        verified = time.monotonic() - started
        size = sum(f.stat().st_size for f in (folder / "bundle").rglob("*") if f.is_file())
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"\nverifying a bundle of {written:,} entries ({size / 1e6:.0f} MB on disk)")
    print(
        f"appended in {appended:.1f} s ({written / appended:,.0f} entries/s, batches per customer)"
    )
    print(
        f"checkpoint signed (nodes stored) in {signed:.1f} s; bundle exported in {exported:.1f} s"
    )
    met = "met" if verified < 10 else "MISSED"
    print(
        f"vrm audit verify's check: {verified:.1f} s ({report.entries:,} entries, "
        f"{report.accesses:,} reads checked against their grants)  goal < 10 s: {met}"
    )


PHASES = {"appends": appends, "cost": cost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", default="appends,cost,verify")
    parser.add_argument("--postgres", action="store_true", help="the servers on PostgreSQL")
    parser.add_argument("--baseline", type=Path, help="a checkout of the code before the log")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--quiet-wait", type=float, default=60.0)
    parser.add_argument("--client-procs", type=int, default=1)
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    with contextlib.ExitStack() as stack:
        database_url = ""
        if args.postgres and set(phases) & set(PHASES):
            from tests.pgserver import postgres_cluster

            database_url = stack.enter_context(postgres_cluster())
        for phase in phases:
            if phase == "verify":
                verify(args)
            else:
                PHASES[phase](args, database_url)


if __name__ == "__main__":
    main()
