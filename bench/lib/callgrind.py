"""Our server run under valgrind's callgrind, to count the instructions its
requests cost.

A count of instructions is the same whatever else the machine is doing,
where requests per second on this shared two-core machine spread by up to
1.8x from one round to the next: it settles a cost of a few percent that
throughput cannot. It is not time (a cache miss and an add count alike) and
it leaves out the database server's own work (PostgreSQL's process is not
counted; SQLite's, in the server's process, is). The server starts with
counting off (``--instr-atstart=no``, about five times slower than native
meanwhile) and counts only while :meth:`Counted.count` runs, in every
thread of the process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from bench.lib.ours import BIN


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


class Counted(NamedTuple):
    pid: int
    out: Path  # callgrind's output file; each count dumps to the next `out.N`

    def count(self, work: Callable[[], None]) -> int:
        """The instructions the server executed while ``work`` ran."""
        self._control("--zero")
        self._control("--instr=on")
        try:
            work()
        finally:
            self._control("--instr=off")
        before = set(self.out.parent.glob(self.out.name + ".*"))
        self._control("--dump")
        (dump,) = set(self.out.parent.glob(self.out.name + ".*")) - before
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1])
        raise RuntimeError(f"no totals in {dump}")

    def _control(self, option: str) -> None:
        subprocess.run(
            ["callgrind_control", option, str(self.pid)], check=True, capture_output=True
        )


@contextmanager
def serve(
    env: dict[str, str], port: int, folder: Path, cwd: Path | None = None
) -> Iterator[Counted]:
    """uvicorn (one process) under callgrind on ``port``, once it answers
    ``/healthz``; ``cwd``: the checkout to run from (first on the path)."""
    out = folder / "callgrind.out"
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            str(BIN / "python"),
            *("-m", "uvicorn", "vrm.asgi:app"),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--no-access-log", "--log-level", "warning"),
        ],
        env=env,
        cwd=cwd,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((folder / "server.log").read_text()[-2000:])
            time.sleep(1)
        yield Counted(server.pid, out)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        log.close()
