"""Throughput, latency and the share of server time spent in encryption.

    python -m bench.store [--quick] [--seconds S | --requests N] [--database-url URL]

The real server (uvicorn, the app from ``create_app``) runs in this process,
in a background thread, so the time spent sealing and opening records
(``vrm.crypto.aead.STATS``) can be set against the time the server spent on
requests (summed by a timing wrapper added here, around the whole app). The
load comes from a separate process with one keep-alive ``httpx`` client per
worker thread, so the client does not take the server's GIL (it does share
the machine's cores).

Phases: ``reads`` alternates GET profile and GET preferences; ``writes``
posts a history event of about 500 bytes. Each runs at every concurrency for
a fixed time or a fixed number of requests. Nothing here asserts anything: it
prints figures.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import random
import secrets
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy.engine import make_url

from bench.lib.machine import free_port, percentile
from bench.lib.people import event, preferences, profile
from vrm import migrate
from vrm.app import create_app
from vrm.crypto import aead
from vrm.keys.server import open_key_store
from vrm.settings import Settings

# Argon2id at test strength, for --fast-hash: only sign-up and log-in pay it.
FAST_HASH = {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
PHASES = ("reads", "writes")

# -- realistic data -------------------------------------------------------------

# -- the client process ---------------------------------------------------------


def _check(r: httpx.Response, status: int) -> None:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")


def _set_up_customer(base_url: str, cookie: str, name: str, password: str, i: int, n: int) -> str:
    """Sign up, log in, fill the profile, preferences and history; return
    the session token."""
    rng = random.Random(i)
    credentials = {"email": f"{name}@example.org", "password": password}
    with httpx.Client(base_url=base_url, timeout=60) as c:
        _check(c.post("/api/v1/accounts", json=credentials), 201)
        _check(c.post("/api/v1/session", json=credentials), 200)
        _check(c.put("/api/v1/me/profile", json=profile(i)), 200)
        _check(c.put("/api/v1/me/preferences", json=preferences(i)), 200)
        for _ in range(n):
            _check(c.post("/api/v1/me/history", json=event(rng)), 201)
        return str(c.cookies[cookie])


def _erase_customer(base_url: str, cookie: str, token: str, password: str) -> None:
    with httpx.Client(base_url=base_url, timeout=60, cookies={cookie: token}) as c:
        _check(c.request("DELETE", "/api/v1/me", json={"password": password}), 204)


class _Load:
    """One phase at one concurrency: workers that wait for ``go``."""

    def __init__(
        self, base_url: str, cookie: str, tokens: list[str], phase: str, concurrency: int
    ) -> None:
        self.phase = phase
        self.clients = [
            httpx.Client(
                base_url=base_url,
                timeout=60,
                headers={"cookie": f"{cookie}={tokens[w % len(tokens)]}"},
            )
            for w in range(concurrency)
        ]
        rng = random.Random(concurrency)
        self.bodies = [httpx.Request("POST", "/", json=event(rng)).read() for _ in range(64)]
        self.warm = threading.Barrier(concurrency + 1)
        self.go = threading.Event()
        self.deadline = 0.0
        self.budget: int | None = None
        self._lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0

    def _request(self, c: httpx.Client, n: int) -> bool:
        if self.phase == "reads":
            path = "/api/v1/me/profile" if n % 2 == 0 else "/api/v1/me/preferences"
            return c.get(path).status_code == 200
        body = self.bodies[n % len(self.bodies)]
        headers = {"content-type": "application/json"}
        return c.post("/api/v1/me/history", content=body, headers=headers).status_code == 201

    def _more(self) -> bool:
        if self.budget is not None:
            with self._lock:
                self.budget -= 1
                return self.budget >= 0
        return time.perf_counter() < self.deadline

    def _work(self, w: int) -> None:
        c, latencies, errors = self.clients[w], [], 0
        with contextlib.suppress(httpx.HTTPError):
            self._request(c, w)  # opens the keep-alive connection, untimed
        self.warm.wait()
        self.go.wait()
        n = w
        while self._more():
            started = time.perf_counter()
            try:
                ok = self._request(c, n)
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok
            n += 1
        with self._lock:
            self.latencies += latencies
            self.errors += errors

    def run(self, conn: Connection) -> dict[str, Any]:
        threads = [threading.Thread(target=self._work, args=(w,)) for w in range(len(self.clients))]
        for t in threads:
            t.start()
        self.warm.wait()
        conn.send(("ready", None))
        seconds, requests = conn.recv()
        self.budget = requests or None
        started = time.perf_counter()
        self.deadline = started + seconds
        self.go.set()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        for c in self.clients:
            c.close()
        lat = sorted(self.latencies)

        return {
            "requests": len(lat),
            "elapsed": elapsed,
            "errors": self.errors,
            "p50": percentile(lat, 0.50, empty=float("nan")),
            "p99": percentile(lat, 0.99, empty=float("nan")),
        }


def client_process(conn: Connection, base_url: str, cookie: str) -> None:
    """Runs in the load process: obeys commands from the benchmark."""
    tokens: list[str] = []
    password = secrets.token_urlsafe(24)
    try:
        while True:
            command, arg = conn.recv()
            if command == "stop":
                return
            if command == "setup":
                customers, n, tag = arg
                started = time.perf_counter()
                with ThreadPoolExecutor(4) as pool:
                    futures = [
                        pool.submit(
                            _set_up_customer, base_url, cookie, f"bench-{tag}-{i}", password, i, n
                        )
                        for i in range(customers)
                    ]
                    tokens = [f.result() for f in futures]
                conn.send(("done", time.perf_counter() - started))
            elif command == "erase":
                with ThreadPoolExecutor(4) as pool:
                    erased = [
                        pool.submit(_erase_customer, base_url, cookie, t, password) for t in tokens
                    ]
                    for f in erased:
                        f.result()
                conn.send(("done", None))
            elif command == "phase":
                phase, concurrency = arg
                conn.send(("done", _Load(base_url, cookie, tokens, phase, concurrency).run(conn)))
    except Exception:
        conn.send(("error", traceback.format_exc()))


# -- the server -----------------------------------------------------------------


class RequestClock:
    """Wall time the server spent inside requests, summed over requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.requests = 0

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
            self.requests += 1

    def reset(self) -> None:
        with self._lock:
            self.seconds = 0.0
            self.requests = 0


def timed(app: Callable[..., Any], clock: RequestClock) -> Callable[..., Any]:
    """The app, with every HTTP request's wall time added to ``clock``."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        try:
            await app(scope, receive, send)
        finally:
            clock.add(time.perf_counter() - started)

    return wrapped


@contextmanager
def serving(app: Callable[..., Any]) -> Iterator[str]:
    """Serve app with uvicorn in a background thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


# -- measuring ------------------------------------------------------------------


def micro(n: int) -> tuple[float, float, float]:
    """µs per seal, per open of a 1 KB document, and per AESGCM key set-up."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, plaintext = aead.new_key(), os.urandom(1024)
    aad = aead.associated_data("vrm-record/1", "0" * 32, "profile", "profile", 1)
    started = time.perf_counter()
    for _ in range(n):
        blob = aead.seal(key, plaintext, aad)
    sealing = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(n):
        aead.open_sealed(key, blob, aad)
    opening = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(n):
        AESGCM(key)
    setup = time.perf_counter() - started
    return sealing / n * 1e6, opening / n * 1e6, setup / n * 1e6


def _ask(conn: Connection, command: str, arg: Any = None) -> Any:
    conn.send((command, arg))
    status, value = conn.recv()
    if status == "error":
        raise RuntimeError(f"the load process failed:\n{value}")
    return value


def _row(
    phase: str,
    concurrency: int,
    result: dict[str, Any],
    crypto: tuple[float, int],
    server: RequestClock,
) -> str:
    crypto_s, ops = crypto
    share = 100 * crypto_s / server.seconds if server.seconds else float("nan")
    per_op = crypto_s / ops * 1e6 if ops else float("nan")
    per_req = ops / server.requests if server.requests else float("nan")
    rate = result["requests"] / result["elapsed"]
    return (
        f"{phase:<7}{concurrency:>5}{result['requests']:>9}{rate:>9.0f}{result['p50']:>9.1f}"
        f"{result['p99']:>9.1f}{result['errors']:>7}{share:>10.2f}{per_op:>9.1f}{per_req:>8.1f}"
    )


HEADER = (
    f"{'phase':<7}{'conc':>5}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'errors':>7}{'crypto %':>10}{'µs/op':>9}{'ops/req':>8}"
)


def run(args: argparse.Namespace) -> None:
    seconds = 2.0 if args.quick else args.seconds
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    seal_us, open_us, setup_us = micro(2000 if args.quick else 20000)
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}")
    print(
        f"micro: 1 KB seal {seal_us:.1f} µs/op, open {open_us:.1f} µs/op "
        f"(of which AESGCM(key) set-up {setup_us:.1f} µs)"
    )
    with tempfile.TemporaryDirectory(prefix="vrm-bench-") as tmp:
        hashing = FAST_HASH if args.fast_hash else {}
        settings = Settings(data_dir=Path(tmp), database_url=args.database_url or "", **hashing)
        where = make_url(settings.database_url_resolved).render_as_string(hide_password=True)
        print(f"database: {where}; argon2 {'test' if args.fast_hash else 'production'} cost")
        migrate.upgrade(settings)
        open_key_store(settings, create=True)  # what `vrm init` does
        clock = RequestClock()
        with serving(timed(create_app(settings), clock)) as base_url:
            ctx = multiprocessing.get_context("spawn")
            conn, child = ctx.Pipe()
            load = ctx.Process(
                target=client_process,
                args=(child, base_url, settings.session_cookie_name),
                daemon=True,
            )
            load.start()
            try:
                tag = os.urandom(4).hex()
                took = _ask(conn, "setup", (args.customers, args.events, tag))
                print(
                    f"set-up: {args.customers} customers with profile, preferences and "
                    f"{args.events} events each, in {took:.1f} s"
                )
                limit = f"{args.requests} requests" if args.requests else f"{seconds:g} s"
                print(f"each phase: {limit}\n\n{HEADER}")
                for phase in PHASES:
                    for concurrency in concurrencies:
                        conn.send(("phase", (phase, concurrency)))
                        status, error = conn.recv()
                        if status == "error":
                            raise RuntimeError(f"the load process failed:\n{error}")
                        time.sleep(0.05)  # let warm-up requests leave the server
                        aead.STATS.reset()
                        clock.reset()
                        conn.send((seconds, args.requests))
                        status, result = conn.recv()
                        if status == "error":
                            raise RuntimeError(f"the load process failed:\n{result}")
                        crypto = (aead.STATS.seconds, aead.STATS.operations)
                        print(_row(phase, concurrency, result, crypto, clock), flush=True)
                if args.database_url:
                    _ask(conn, "erase")
            finally:
                conn.send(("stop", None))
                load.join(timeout=30)
    print(
        "\ncrypto %: time in seal/open over the server's summed request time; "
        "µs/op: per seal or open; ops/req: seals and opens per request."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase (default 10)")
    parser.add_argument("--requests", type=int, default=0, help="per phase, instead of seconds")
    parser.add_argument("--quick", action="store_true", help="2-second phases")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated (default 1,8,32)")
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--events", type=int, default=50, help="history events per customer")
    parser.add_argument(
        "--database-url", default="", help="postgresql+psycopg://... (default: SQLite)"
    )
    parser.add_argument(
        "--fast-hash", action="store_true", help="Argon2id at test cost (sign-up and log-in only)"
    )
    run(parser.parse_args())


if __name__ == "__main__":
    main()
