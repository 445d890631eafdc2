"""node oidc-provider, the authorization-server peer (bench/oidc_provider/).

``start`` runs server.mjs (pinned in bench/oidc_provider/package.json and
its lockfile; ``npm ci`` first when node_modules is missing) with one
confidential client and the same rules as ours, in its own process group,
on a free loopback port. Its refresh tokens come from the real
authorization code flow (bench/lib/authcode.py). Its store: a ``Map`` in
memory (default), its own development adapter, or PostgreSQL
(server.mjs and pg_adapter.mjs; bench/README.md says why each).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.lib.authcode import AuthCodeFlow
from bench.lib.machine import free_port
from bench.lib.token_load import Target

OP_DIR = Path(__file__).resolve().parent.parent / "oidc_provider"
SCOPES = "profile.email:read preferences:read"
REDIRECT_URI = "https://vendor.example/callback"
# The peer's own database in a shared cluster, for the postgres adapter.
OP_DATABASE = "oidc_bench"


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


def start(workers: int, adapter: str = "map", database_url: str = "") -> Target:
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
