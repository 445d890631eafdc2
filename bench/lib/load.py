"""Closed-loop load of authorized GETs (the data API's load).

``measure(target, concurrency, warmup, seconds)`` opens ``concurrency``
keep-alive connections to ``target`` and has each send the next GET as soon
as the last one is answered, for ``warmup`` and then ``seconds`` seconds. Only
a 200 carrying a body of the expected length counts; everything else is an
error, and the first few are kept. The requests are raw HTTP/1.1 over asyncio
streams (``Conn`` from bench/lib/http.py, uvloop when installed), in this
process: the server runs in its own. The access token is renewed before the
run if it would expire during it, and during the run if the run is longer
than a token lives. ``measure_together`` runs several such loads at once
(one client reading a large history while others read small views).
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.lib.http import Conn, HttpError, run_async
from bench.lib.machine import cpu_of, machine_busy, percentile, tree_pids

# Renew an access token this long before it expires.
RENEW_AHEAD = 30.0


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float  # time.time() when it stops working


@dataclass
class Target:
    """A server answering authorized GETs of one resource."""

    name: str
    base_url: str
    path: str
    size: int  # bytes of the expected body
    pid: int  # root of the server's process tree
    renew: Callable[[], Token]  # a fresh access token
    token: Token = field(init=False)

    def __post_init__(self) -> None:
        self.token = self.renew()

    def fresh_token(self) -> None:
        self.token = self.renew()


@dataclass
class Run:
    server: str
    concurrency: int
    ok: int
    errors: int
    rps: float
    p50: float  # ms
    p99: float  # ms
    server_cpu: float  # shares of one core over the window
    client_cpu: float
    other_cpu: float
    samples: list[str]


def _request(target: Target) -> bytes:
    host = urlsplit(target.base_url).netloc
    return (
        f"GET {target.path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {target.token.value}\r\nAccept: application/json\r\n\r\n"
    ).encode()


async def _drive(loads: list[tuple[Target, int]], warmup: float, seconds: float) -> list[Run]:
    """For each (target, concurrency): that many keep-alive connections,
    each sending the next GET as soon as the last one is answered, all loads
    at once. Only a 200 with the expected body length counts; latencies of
    the answers that arrive inside the window, per load."""
    start = time.perf_counter()
    window, end = start + warmup, start + warmup + seconds
    pids = sorted({pid for target, _ in loads for pid in tree_pids(target.pid)})
    results: list[tuple[array[float], list[int], list[str]]] = []
    clients: list[Coroutine[Any, Any, None]] = []
    renewers = []
    all_conns: list[Conn] = []

    def one(target: Target, conns: list[Conn]) -> None:
        request = [_request(target)]
        lat: array[float] = array("d")
        errors = [0]
        samples: list[str] = []
        results.append((lat, errors, samples))

        def fail(what: str) -> None:
            if time.perf_counter() >= window:
                errors[0] += 1
            if len(samples) < 5:
                samples.append(what)

        async def client(conn: Conn) -> None:
            while (t0 := time.perf_counter()) < end:
                try:
                    status, _, body = await conn.roundtrip(request[0])
                except (OSError, HttpError, asyncio.IncompleteReadError) as exc:
                    fail(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    continue
                t1 = time.perf_counter()
                if status != 200 or len(body) != target.size:
                    fail(f"{status}, {len(body)} bytes: {body[:160]!r}")
                elif window <= t1 <= end:
                    lat.append(t1 - t0)

        async def keep_fresh() -> None:
            # Only for runs longer than a token lives: renewal happens off the
            # event loop, and the next request of each connection uses the new one.
            while True:
                await asyncio.sleep(max(0.5, target.token.expires_at - RENEW_AHEAD - time.time()))
                if target.token.expires_at - RENEW_AHEAD > time.time():
                    continue
                try:
                    await asyncio.to_thread(target.fresh_token)
                    request[0] = _request(target)
                except (httpx.HTTPError, KeyError, ValueError) as exc:
                    fail(f"token renewal: {type(exc).__name__}: {exc}")

        clients.extend(client(conn) for conn in conns)
        renewers.append(keep_fresh)

    for target, concurrency in loads:
        parts = urlsplit(target.base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        conns = [Conn(host, port) for _ in range(concurrency)]
        for conn in conns:
            await conn.open()
        all_conns += conns
        one(target, conns)

    async def meter() -> tuple[float, float, float]:
        await asyncio.sleep(window - time.perf_counter())
        before = (cpu_of(pids), time.process_time(), machine_busy())
        await asyncio.sleep(end - time.perf_counter())
        after = (cpu_of(pids), time.process_time(), machine_busy())
        server, client_, busy = ((b - a) / seconds for a, b in zip(before, after, strict=True))
        return server, client_, max(0.0, busy - server - client_)

    tasks = [asyncio.create_task(renew()) for renew in renewers]
    try:
        cpu, *_ = await asyncio.gather(meter(), *clients)
    finally:
        for task in tasks:
            task.cancel()
        for conn in all_conns:
            conn.close()
    server_cpu, client_cpu, other_cpu = cpu
    runs = []
    for (target, concurrency), (lat, errors, samples) in zip(loads, results, strict=True):
        ordered = sorted(lat)
        runs.append(
            Run(
                target.name,
                concurrency,
                len(ordered),
                errors[0],
                len(ordered) / seconds,
                percentile(ordered, 0.50),
                percentile(ordered, 0.99),
                server_cpu,
                client_cpu,
                other_cpu,
                samples,
            )
        )
    return runs


def measure(target: Target, concurrency: int, warmup: float, seconds: float) -> Run:
    return measure_together([(target, concurrency)], warmup, seconds)[0]


def measure_together(loads: list[tuple[Target, int]], warmup: float, seconds: float) -> list[Run]:
    """Several loads on the same clock; the CPU figures are of them all."""
    for target, _ in loads:
        if target.token.expires_at - time.time() < warmup + seconds + RENEW_AHEAD + 5:
            target.fresh_token()
    return run_async(_drive(loads, warmup, seconds))
