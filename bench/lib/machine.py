"""The machine the benchmarks share: free ports, CPU used by a process tree
and by everything, waiting for quiet, and percentiles of latencies."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

# Printed under every table that has CPU columns.
CPU_NOTE = (
    "(CPU in shares of one core over the measured window: the server's process tree, the load"
    " generator, and every other process on the machine, which should be near 0%)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks used, user + system), from /proc."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                raw = Path(f"/proc/{entry}/stat").read_text()
                fields = raw[raw.rindex(")") + 2 :].split()
                stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return stats


def tree_pids(root: int) -> list[int]:
    """``root`` and its live descendants."""
    stats = _stats()
    found, todo, seen = [], [root], set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        found.append(pid)
        todo.extend(child for child, (parent, _) in stats.items() if parent == pid)
    return found


def cpu_of(pids: Iterable[int]) -> float:
    """CPU seconds used so far by ``pids`` (cheap enough to call mid-run)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/stat").read_text()
            fields = raw[raw.rindex(")") + 2 :].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int, exclude: set[int]) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its live
    descendants, leaving out ``exclude`` (our client processes)."""
    return cpu_of(pid for pid in tree_pids(root) if pid not in exclude)


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


def memory_of(pids: Iterable[int]) -> tuple[float, float]:
    """Resident size now and at its peak (VmRSS, VmHWM), in MiB, summed over
    ``pids``."""
    now = peak = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    now += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    peak += int(line.split()[1])
    return now / 1024, peak / 1024


def percentile(ordered: Sequence[float], q: float, empty: float = 0.0) -> float:
    """The ``q`` quantile of ``ordered`` (sorted seconds), in milliseconds."""
    if not ordered:
        return empty
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000
