"""Product code reads the wall clock only through vrm.dbtypes.utcnow, the
seam the ``clock`` fixture moves (tests/conftest.py): a module that asks
the system clock itself decides by a time no test can set. Timers that
measure a duration (time.monotonic, time.perf_counter) are not the wall
clock and stay free."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The seam itself.
SEAM = ROOT / "vrm" / "dbtypes.py"
# Calls that read the wall clock, as ``<module or class>.<function>``.
WALL_CLOCK = {
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "date.today",
    "time.time",
    "time.time_ns",
    "time.localtime",
    "time.gmtime",
}


def _wall_clock_calls(path: Path, root: Path = ROOT) -> list[str]:
    """Each wall-clock call in ``path``, as ``<path>:<line> <call>``, in
    line order."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        # datetime.now(...), and datetime.datetime.now(...) alike.
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        if f"{name}.{node.func.attr}" in WALL_CLOCK:
            where = path.relative_to(root).as_posix()
            found.append((node.lineno, f"{where}:{node.lineno} {name}.{node.func.attr}"))
    return [call for _, call in sorted(found)]


def test_only_the_seam_reads_the_wall_clock() -> None:
    sources = sorted(p for package in ("vrm", "consent") for p in (ROOT / package).rglob("*.py"))
    assert len(sources) > 100  # the walk found the packages
    calls = [c for p in sources if p != SEAM for c in _wall_clock_calls(p)]
    assert calls == []


def test_the_check_sees_a_module_that_reads_the_system_clock(tmp_path: Path) -> None:
    module = tmp_path / "stamp.py"
    module.write_text(
        "import time\nfrom datetime import UTC, date, datetime\n"
        "a = datetime.now(UTC)\nb = date.today()\nc = time.time()\nd = time.monotonic()\n"
    )
    names = [c.split(" ")[1] for c in _wall_clock_calls(module, tmp_path)]
    assert names == ["datetime.now", "date.today", "time.time"]
