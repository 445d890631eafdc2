"""A private PostgreSQL cluster for the test session: initdb into a temp
dir, start on a free loopback port, stop and delete at the end."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise RuntimeError(
        f"PostgreSQL's {name} is not installed; run scripts/ensure-postgres.sh (make test does)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh, empty database ``vrm_test``."""
    base = Path(tempfile.mkdtemp(prefix="vrm-pg-"))
    data, sock, log = base / "data", base / "sock", base / "log"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    subprocess.run(
        [*prefix, _bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"], **run
    )  # type: ignore[call-overload]
    # fsync=off: this cluster's data is thrown away. Never in production, where
    # durability rests on fsync and synchronous_commit (docs/operations.md).
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, _bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
        **run,  # type: ignore[call-overload]
    )
    try:
        subprocess.run(
            [
                *prefix,
                _bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-c",
                "CREATE DATABASE vrm_test",
            ],
            **run,  # type: ignore[call-overload]
        )
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/vrm_test"
    finally:
        subprocess.run(
            [*prefix, _bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(base, ignore_errors=True)


def pg_dump(url: str) -> bytes:
    """A plain-SQL dump of the database behind url, as pg_dump writes it."""
    rest = url.split("://", 1)[1]
    hostport, dbname = rest.split("@", 1)[1].split("/", 1)
    host, port = hostport.split(":")
    return subprocess.run(
        [_bin("pg_dump"), "-h", host, "-p", port, "-U", "postgres", dbname],
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
