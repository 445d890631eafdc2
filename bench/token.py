"""Token endpoint throughput: our authorization server beside node oidc-provider.

    python bench/token.py [--only-oidc-provider | --only-ours] [--workers N]
                          [--concurrency 8] [--seconds 10] [--warmup 2]
                          [--postgres] [--op-adapter map|builtin|postgres]

Two phases per server, each at a fixed concurrency for a fixed time after a
warm-up: ``client_credentials`` (POST grant_type=client_credentials) and
``refresh_token`` (every request spends the refresh token that the previous
response on the same connection returned, so rotation is on the hot path).
Both use HTTP Basic client authentication, one keep-alive connection per
concurrent client, and count a request as good only on a 200 carrying an
access token (and, for refresh, a new refresh token).

The peer is node oidc-provider (``bench/oidc_provider/server.mjs``) with the
same rules; ``npm ci`` runs first if its node_modules is missing. The load
comes from separate client processes speaking raw HTTP/1.1 over asyncio
streams (uvloop when installed), cheap enough to leave the server the
machine's cores; the table shows the CPU both sides used so a saturated client
is visible. See bench/README.md for how refresh tokens are obtained.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/token.py``, this file's folder is sys.path[0], where
# it would shadow the standard library's ``token`` module (tokenize, inspect
# and everything above them import it). Nothing here imports from bench/.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, NamedTuple
from urllib.parse import parse_qs, quote, urlencode, urlsplit, urlunsplit

OP_DIR = Path(__file__).resolve().parent / "oidc_provider"
PHASES = ("client_credentials", "refresh_token")
# Issue 3: at least oidc-provider's throughput, phase by phase.
GOAL = 1.0
SCOPES = "profile.email:read preferences:read"
REDIRECT_URI = "https://vendor.example/callback"


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


# Set by --postgres: the URL of the private cluster the script started.
_DATABASE_URL = [""]
# The peer's own database in that cluster, for --op-adapter postgres.
OP_DATABASE = "oidc_bench"


def start_ours(workers: int) -> Target:
    """Start our server with ``workers`` uvicorn workers (bench/ours.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import ours

    base, path, client_id, secret, factory, stop, pid = ours.start(workers, _DATABASE_URL[0])
    return Target(base, path, client_id, secret, factory, stop, cc_scope="feed:read", pid=pid)


# -- a tiny HTTP/1.1 client ------------------------------------------------------


class HttpError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection; reopens itself after a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def roundtrip(self, request: bytes) -> tuple[int, bytes, bytes]:
        """Send one serialised request; return (status, raw head, body)."""
        if self.reader is None or self.writer is None:
            await self.open()
        reader, writer = self.reader, self.writer
        if reader is None or writer is None:
            raise HttpError("not connected")
        writer.write(request)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self.close()
            raise HttpError("connection closed by the server") from exc
        status = int(head[9:12])
        lower = head.lower()
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            j = lower.index(b"\r\n", i + 2)
            body = await reader.readexactly(int(lower[i + 17 : j]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            body = await self._chunked(reader)
        else:
            body = await reader.read()
            self.close()
            return status, head, body
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, head, body

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers expected
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)


def headers_of(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    out = []
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            out.append((name.strip().lower(), value.strip()))
    return out


def basic_auth(client_id: str, client_secret: str) -> str:
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def form_post(host: str, path: str, auth: str, form: dict[str, str]) -> bytes:
    body = urlencode(form).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class AuthCodeFlow:
    """Refresh tokens from the real authorization code flow with PKCE (S256),
    for a server whose consent step answers a plain GET by itself (the bench
    interaction route of server.mjs): GET the authorization endpoint, follow
    the 303s with a cookie jar until the redirect URI, exchange the code at
    the token endpoint. ``mint_on`` does it on a given load connection, so
    the token lives on whichever worker serves that connection."""

    base_url: str
    authorize_path: str
    token_path: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str

    async def mint_on(self, conn: Conn) -> str:
        host = urlsplit(self.base_url).netloc
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(12)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            }
        )
        target, jar, code = f"{self.authorize_path}?{query}", {}, None
        for _ in range(10):
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
            request += f"Cookie: {cookie}\r\n\r\n" if cookie else "\r\n"
            status, head, body = await conn.roundtrip(request.encode())
            location = None
            for name, value in headers_of(head):
                if name == "set-cookie":
                    pair = value.split(";", 1)[0]
                    key, _, val = pair.partition("=")
                    jar[key.strip()] = val.strip()
                elif name == "location":
                    location = value
            if status not in (302, 303) or location is None:
                raise HttpError(f"authorization flow stopped at {status}: {body[:300]!r}")
            if location.startswith(self.redirect_uri):
                params = parse_qs(urlsplit(location).query)
                if params.get("state") != [state] or "code" not in params:
                    raise HttpError(f"bad authorization response: {location}")
                code = params["code"][0]
                break
            parts = urlsplit(location)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        if code is None:
            raise HttpError("authorization flow did not reach the redirect URI")
        auth = basic_auth(self.client_id, self.client_secret)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        status, _, body = await conn.roundtrip(form_post(host, self.token_path, auth, form))
        if status != 200:
            raise HttpError(f"code exchange failed with {status}: {body[:300]!r}")
        return json.loads(body)["refresh_token"]

    def __call__(self, n: int) -> list[str]:
        """``n`` tokens, each minted on a fresh connection."""

        async def mint_all() -> list[str]:
            parts = urlsplit(self.base_url)
            out = []
            for _ in range(n):
                conn = Conn(parts.hostname or "127.0.0.1", parts.port or 80)
                try:
                    out.append(await self.mint_on(conn))
                finally:
                    conn.close()
            return out

        return asyncio.run(mint_all())


# -- load generator (runs in client processes) ----------------------------------


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


# -- process-tree CPU -----------------------------------------------------------


def tree_cpu(root: int, exclude: set[int]) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its live
    descendants, leaving out ``exclude`` (our client processes)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        stats[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])))
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        if pid not in exclude:
            total += stats[pid][1] / tick
        todo.extend(child for child, (ppid, _) in stats.items() if ppid == pid)
    return total


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq (steal: the hypervisor's, not ours)
    busy = sum(fields[:7]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit: float) -> None:
    """Wait up to ``limit`` seconds for two quiet seconds in a row (under a
    tenth of a core busy machine-wide): on a shared box, other work skews
    both servers' figures."""
    deadline, quiet = time.monotonic() + limit, 0
    while limit > 0 and quiet < 2:
        if time.monotonic() > deadline:
            print(f"  the machine stayed busy for {limit:g} s; measuring anyway", flush=True)
            return
        before = machine_busy()
        time.sleep(1)
        quiet = quiet + 1 if machine_busy() - before < 0.1 else 0


# -- one phase against one server -----------------------------------------------


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

    def pct(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0

    return PhaseResult(
        label,
        phase,
        ok,
        sum(r.errors for r in results),
        ok / args.seconds,
        pct(0.50),
        pct(0.99),
        server_cpu,
        client_cpu,
        None if server_cpu is None else max(0.0, busy - server_cpu - client_cpu),
        [s for r in results for s in r.samples][:5],
        [sum(col) for col in zip(*(r.timeline for r in results), strict=True)][: int(args.seconds)],
    )


# -- oidc-provider --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_node_modules() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH; the oidc-provider side needs Node.js")
    wanted = json.loads((OP_DIR / "package.json").read_text())["dependencies"]
    if all((OP_DIR / "node_modules" / name / "package.json").exists() for name in wanted):
        return
    print("installing oidc-provider (npm ci) ...", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=OP_DIR, check=True
    )


def libpq_url(url: str) -> str:
    """``url`` in the form libpq and node's ``pg`` take,
    ``postgresql://user@host:port/db``: SQLAlchemy's ``postgresql+psycopg://``
    (what tests/pgserver.py yields) loses its driver suffix."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url}")
    return f"postgresql://{rest}"


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server behind ``url``; return its URL
    (libpq form)."""
    import psycopg
    from psycopg import sql

    server = libpq_url(url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def start_oidc_provider(workers: int, adapter: str = "map", database_url: str = "") -> Target:
    """Start server.mjs; ``database_url`` (libpq form) is the database of the
    ``postgres`` adapter."""
    if adapter == "postgres" and not database_url:
        raise ValueError("the postgres adapter needs a database URL")
    ensure_node_modules()
    port = free_port()
    client_id = "bench-client"
    client_secret = secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "BENCH_CLIENT_ID": client_id,
        "BENCH_CLIENT_SECRET": client_secret,
        "BENCH_REDIRECT_URI": REDIRECT_URI,
        "BENCH_SCOPES": SCOPES,
        "BENCH_ADAPTER": adapter,
        "BENCH_DATABASE_URL": database_url,
        "NODE_ENV": "production",
        "BENCH_EXIT_ON_STDIN_EOF": "1",
    }
    log = tempfile.NamedTemporaryFile("w+", prefix="oidc-provider-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        ["node", "server.mjs", "--port", str(port), "--workers", str(workers)],
        cwd=OP_DIR,
        env=env,
        stdin=subprocess.PIPE,  # never written; node stops when it closes (if we die)
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() ends node and its workers
    )

    def stop() -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # cluster workers leave when the primary goes; make sure of it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stdin is not None:
            proc.stdin.close()
        log.close()
        os.unlink(log.name)

    deadline = time.monotonic() + 30
    while True:
        text = Path(log.name).read_text()
        if "READY " in text:
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(f"oidc-provider did not start:\n{text}")
        time.sleep(0.05)
    base_url = f"http://127.0.0.1:{port}"
    flow = AuthCodeFlow(base_url, "/auth", "/token", client_id, client_secret, REDIRECT_URI, SCOPES)
    return Target(base_url, "/token", client_id, client_secret, flow, stop, SCOPES, proc.pid)


# -- main -----------------------------------------------------------------------


def run_server(label: str, start: Callable[[int], Any], args: argparse.Namespace):
    target = start(args.workers)
    if not isinstance(target, Target):
        target = Target(*target)
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
    print(
        "(CPU in shares of one core over the measured window: server process tree, all client"
        " processes, and every other process on the machine, which should be near 0%)"
    )
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
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
                from tests.pgserver import postgres_cluster

                url = cluster.enter_context(postgres_cluster())
            if not args.only_oidc_provider:
                _DATABASE_URL[0] = url if ours_on_pg else ""
                results += run_server("ours", start_ours, args)
            if not args.only_ours:
                op_url = create_database(url, OP_DATABASE) if peer_on_pg else ""

                def start_peer(workers: int) -> Target:
                    return start_oidc_provider(workers, args.op_adapter, op_url)

                results += run_server("oidc-provider", start_peer, args)
    except NotImplementedError as exc:
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:
        raise SystemExit("interrupted; everything this run started has been stopped") from None
    print_table(results, args)


if __name__ == "__main__":
    main()
