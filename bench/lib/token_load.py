"""The token endpoint's load: spawned client processes, one phase at a time.

``run_phase`` starts ``--client-procs`` processes (spawned, so they share
nothing with this one), each holding its share of ``--concurrency``
keep-alive connections (raw HTTP/1.1, bench/lib/http.py, uvloop when
installed). Each connection sends its next request as soon as the last is
answered: ``client_credentials`` posts the grant; ``refresh_token`` spends
the refresh token the previous answer on the same connection returned, so
rotation is on the hot path. A request counts only as a 200 carrying an
access token (and, for refresh, a new refresh token).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from bench.lib.authcode import AuthCodeFlow
from bench.lib.http import Conn, HttpError, basic_auth, form_post
from bench.lib.machine import machine_busy, percentile, tree_cpu

PHASES = ("client_credentials", "refresh_token")


class Target(NamedTuple):
    """A running authorization server under test.

    ``refresh_tokens_factory(n)`` returns ``n`` fresh refresh tokens of this
    client, each unused, each good on any of the server's workers; the load
    generator calls it once per refresh phase, in this process, before the
    clock starts, and gives each connection its own token. A factory that is
    an ``AuthCodeFlow`` is instead run on each load connection itself (see
    there). ``stop()`` must stop everything ``start_*`` started.
    """

    base_url: str
    token_path: str
    client_id: str
    client_secret: str
    refresh_tokens_factory: Callable[[int], list[str]]
    stop: Callable[[], None]
    # Scope to ask for with client_credentials (None: send no scope).
    cc_scope: str | None = None
    # Root of the server's process tree, for the server CPU column.
    pid: int | None = None


@dataclass(frozen=True)
class LoadSpec:
    phase: str
    base_url: str
    token_path: str
    client_id: str
    client_secret: str
    cc_scope: str | None
    connections: int
    warmup: float
    seconds: float
    tokens: tuple[str, ...] = ()
    minter: AuthCodeFlow | None = None


@dataclass
class LoadResult:
    ok: int
    errors: int
    samples: list[str]
    latencies: bytes  # array('d') of seconds, good requests in the window
    timeline: list[int]  # good requests per second of the window
    cpu: float  # process CPU seconds over the whole run


def client_main(spec: LoadSpec, pipe: Connection) -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        result = asyncio.run(_load(spec, pipe))
    except BaseException as exc:
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
        raise
    pipe.send(("done", result))


async def _load(spec: LoadSpec, pipe: Connection) -> LoadResult:
    parts = urlsplit(spec.base_url)
    host = parts.netloc
    conns = [Conn(parts.hostname or "127.0.0.1", parts.port or 80) for _ in range(spec.connections)]
    for conn in conns:
        await conn.open()
    tokens: list[str | None] = list(spec.tokens) or [None] * len(conns)
    if spec.phase == "refresh_token" and spec.minter is not None:
        tokens = [await spec.minter.mint_on(conn) for conn in conns]
    pipe.send(("ready", None))
    go_wall = pipe.recv()
    start = time.perf_counter() + (go_wall - time.time())
    window = start + spec.warmup
    end = window + spec.seconds
    lat = array("d")
    timeline = [0] * (int(spec.seconds) + 1)
    counts = {"ok": 0, "errors": 0}
    samples: list[str] = []
    auth = basic_auth(spec.client_id, spec.client_secret)

    def record(t0: float, t1: float) -> None:
        if window <= t1 <= end:
            counts["ok"] += 1
            lat.append(t1 - t0)
            timeline[int(t1 - window)] += 1

    def fail(what: str) -> None:
        if time.perf_counter() >= window:
            counts["errors"] += 1
        if len(samples) < 5:
            samples.append(what)

    async def client_credentials(conn: Conn) -> None:
        form = {"grant_type": "client_credentials"}
        if spec.cc_scope:
            form["scope"] = spec.cc_scope
        request = form_post(host, spec.token_path, auth, form)
        while (t0 := time.perf_counter()) < end:
            try:
                status, _, body = await conn.roundtrip(request)
            except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
                fail(f"{type(exc).__name__}: {exc}")
                conn.close()
                continue
            if status == 200 and b'"access_token"' in body:
                record(t0, time.perf_counter())
            else:
                fail(f"{status}: {body[:200]!r}")

    async def refresh(conn: Conn, token: str | None) -> None:
        prefix = "grant_type=refresh_token&refresh_token="
        retried = False
        while (t0 := time.perf_counter()) < end:
            if token is None:
                if spec.minter is None:
                    return  # chain broken and no way to start a new one
                try:
                    token = await spec.minter.mint_on(conn)
                except (OSError, HttpError, asyncio.IncompleteReadError, KeyError) as exc:
                    fail(f"re-mint: {type(exc).__name__}: {exc}")
                    conn.close()
                    await asyncio.sleep(0.05)
                continue
            body = (prefix + quote(token, safe="")).encode()
            request = (
                f"POST {spec.token_path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            try:
                status, _, raw = await conn.roundtrip(request)
            except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
                fail(f"{type(exc).__name__}: {exc}")
                conn.close()
                # No answer: most likely an idle keep-alive connection the
                # server had closed, so the token is probably unspent. Try it
                # once more on a new connection; if it was spent, that fails.
                token = None if retried else token
                retried = not retried
                continue
            retried = False
            t1 = time.perf_counter()
            new = None
            if status == 200:
                with contextlib.suppress(ValueError):
                    payload = json.loads(raw)
                    if payload.get("access_token"):
                        new = payload.get("refresh_token")
            if new:
                record(t0, t1)
                token = new
            else:
                fail(f"{status}: {raw[:200]!r}")
                token = None

    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    cpu0 = time.process_time()
    if spec.phase == "client_credentials":
        jobs = [client_credentials(conn) for conn in conns]
    else:
        jobs = [refresh(conn, token) for conn, token in zip(conns, tokens, strict=True)]
    await asyncio.gather(*jobs)
    cpu = time.process_time() - cpu0
    for conn in conns:
        conn.close()
    return LoadResult(counts["ok"], counts["errors"], samples, lat.tobytes(), timeline, cpu)


@dataclass
class PhaseResult:
    server: str
    phase: str
    ok: int
    errors: int
    rps: float
    p50: float
    p99: float
    server_cpu: float | None
    client_cpu: float
    other_cpu: float | None  # everything else on the machine, same unit
    samples: list[str]
    timeline: list[int]


def run_phase(label: str, target: Target, phase: str, args: argparse.Namespace) -> PhaseResult:
    procs = max(1, min(args.client_procs, args.concurrency))
    per_proc = [args.concurrency // procs + (i < args.concurrency % procs) for i in range(procs)]
    factory = target.refresh_tokens_factory
    minter = factory if isinstance(factory, AuthCodeFlow) else None
    tokens: list[str] = []
    if phase == "refresh_token" and minter is None:
        tokens = list(factory(args.concurrency))
        if len(tokens) != args.concurrency:
            raise RuntimeError(f"refresh_tokens_factory returned {len(tokens)} tokens")
    ctx = multiprocessing.get_context("spawn")
    children, finished = [], False
    for i, n in enumerate(per_proc):
        mine = tuple(tokens[sum(per_proc[:i]) : sum(per_proc[: i + 1])])
        spec = LoadSpec(
            phase,
            target.base_url,
            target.token_path,
            target.client_id,
            target.client_secret,
            target.cc_scope,
            n,
            args.warmup,
            args.seconds,
            mine,
            minter,
        )
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=client_main, args=(spec, theirs), daemon=True)
        proc.start()
        children.append((proc, ours))
    try:
        for proc, pipe in children:
            deadline = time.monotonic() + 120
            while not pipe.poll(0.2):
                if not proc.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"{label} {phase}: a client process did not get ready")
            kind, detail = pipe.recv()
            if kind != "ready":
                raise RuntimeError(f"{label} {phase}: client process failed: {detail}")
        go = time.time() + 0.2
        for _, pipe in children:
            pipe.send(go)
        exclude = {proc.pid for proc, _ in children if proc.pid is not None}
        time.sleep(max(0.0, go + args.warmup - time.time()))
        cpu0 = tree_cpu(target.pid, exclude) if target.pid else None
        busy0 = machine_busy()
        time.sleep(max(0.0, go + args.warmup + args.seconds - time.time()))
        cpu1 = tree_cpu(target.pid, exclude) if target.pid else None
        busy = (machine_busy() - busy0) / args.seconds
        results: list[LoadResult] = []
        for _proc, pipe in children:
            if not pipe.poll(args.warmup + args.seconds + 60):
                raise RuntimeError(f"{label} {phase}: a client process hung")
            kind, detail = pipe.recv()
            if kind != "done":
                raise RuntimeError(f"{label} {phase}: client process failed: {detail}")
            results.append(detail)
        finished = True
    finally:
        for proc, _ in children:
            proc.join(5 if finished else 0)
            if proc.is_alive():
                proc.kill()
                proc.join()
    lat = array("d")
    for r in results:
        lat.frombytes(r.latencies)
    ordered = sorted(lat)
    ok = sum(r.ok for r in results)
    server_cpu = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) / args.seconds
    client_cpu = sum(r.cpu for r in results) / (args.warmup + args.seconds)

    return PhaseResult(
        label,
        phase,
        ok,
        sum(r.errors for r in results),
        ok / args.seconds,
        percentile(ordered, 0.50),
        percentile(ordered, 0.99),
        server_cpu,
        client_cpu,
        None if server_cpu is None else max(0.0, busy - server_cpu - client_cpu),
        [s for r in results for s in r.samples][:5],
        [sum(col) for col in zip(*(r.timeline for r in results), strict=True)][: int(args.seconds)],
    )
