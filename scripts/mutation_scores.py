"""Print the mutation score of each module ``make mutate`` ran on.

Reads mutmut's results (mutants/<module>.meta, written by ``mutmut run``)
for every module of ``[tool.mutmut] only_mutate`` in pyproject.toml. The
score is the share of mutants the tests caught: killed, timed out, or
refused by the type checker, over every mutant tried; a mutant no test
reaches counts as a survivor, not as nothing. Exits 1 if a module has no
results yet, so a run that did not happen is not read as a score.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

CAUGHT = {"killed", "timeout", "caught by type check"}
# Never tried: interrupted or left out; neither caught nor survived.
UNTRIED = {"not checked", "skipped", "check was interrupted by user"}


def scores(root: Path) -> list[tuple[str, Counter[str]]]:
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    out: list[tuple[str, Counter[str]]] = []
    for module in config["only_mutate"]:
        meta = root / "mutants" / f"{module}.meta"
        if not meta.exists():
            out.append((module, Counter()))
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        out.append((module, Counter(status_by_exit_code[c] for c in codes.values())))
    return out


def main() -> int:
    missing = False
    print(f"{'module':<30} {'score':>6} {'caught':>7} {'missed':>7} {'no tests':>9}")
    for module, counts in scores(Path.cwd()):
        tried = sum(n for status, n in counts.items() if status not in UNTRIED)
        if not tried:
            print(f"{module:<30} {'-':>6}  (no results: run mutmut run first)")
            missing = True
            continue
        caught = sum(counts[s] for s in CAUGHT)
        missed = tried - caught  # survived, reached by no test, or suspicious
        print(
            f"{module:<30} {100 * caught / tried:5.1f}% {caught:>7} {missed:>7}"
            f" {counts['no tests']:>9}"
        )
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
