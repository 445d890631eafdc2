"""Node.js for the tests that drive the server with JavaScript clients
(openid-client, playwright-core): find node and npm, check the version, and
install a test folder's packages from its lockfile when they are missing or
differ from it. The harness installs; the developer does not."""

from __future__ import annotations

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

NPM_TIMEOUT = 300
MIN_MAJOR = 20
# Debian's Chromium, which the browser tests drive (scripts/ensure-chromium.sh).
CHROMIUM = Path("/usr/bin/chromium")


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is not on PATH: these tests need Node.js >= {MIN_MAJOR} and npm"
            " (Debian: apt-get install nodejs npm)",
            pytrace=False,
        )
    return found


def options(**values: str) -> list[str]:
    """Command-line options for a script that reads them with node's
    ``parseArgs``, each written as ``--name=value``: a value that begins
    with a dash (a random client secret may) is otherwise refused as
    ambiguous. Underscores in names become dashes."""
    return [f"--{name.replace('_', '-')}={value}" for name, value in values.items()]


def _locked_versions(lockfile: Path) -> dict[str, str]:
    packages = json.loads(lockfile.read_text())["packages"]
    return {k: v["version"] for k, v in packages.items() if k.startswith("node_modules/")}


def node_with_packages(folder: Path) -> str:
    """The node executable, after ``npm ci`` in ``folder`` if its
    node_modules is missing or differs from package-lock.json."""
    node = tool("node")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    found = re.match(r"v(\d+)", version)
    if found is None or int(found.group(1)) < MIN_MAJOR:
        pytest.fail(f"these tests need Node.js >= {MIN_MAJOR}, found {version}", pytrace=False)
    installed = folder / "node_modules" / ".package-lock.json"
    wanted = _locked_versions(folder / "package-lock.json")
    # Several modules share a folder (tests/consent/browser), and the suite
    # runs in two processes: one checks and installs at a time, for npm ci
    # starts by deleting node_modules. The lock lives outside the folder,
    # which npm ci empties.
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with (Path(tempfile.gettempdir()) / f"vrm-npm-ci-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed.exists() or _locked_versions(installed) != wanted:
            done = subprocess.run(
                [tool("npm"), "ci", "--no-audit", "--no-fund"],
                cwd=folder,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
            if done.returncode != 0:
                pytest.fail(f"npm ci in {folder} failed:\n{done.stderr}", pytrace=False)
    return node


def browser_node(folder: Path) -> str:
    """:func:`node_with_packages` for a browser test, which fails (not
    skips) when Debian's Chromium is missing, and says how to get it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (Debian's chromium package)",
            pytrace=False,
        )
    return node_with_packages(folder)


def run_browser_script(
    node: str, script: Path, packages: Path, *, timeout: float, **values: str
) -> dict[str, Any]:
    """Run a browser scenario script with ``values`` as its options
    (:func:`options`, ``chromium`` added), in the folder of its packages;
    the JSON object it printed last. A script that failed fails the test
    with what it printed."""
    done = subprocess.run(
        [node, str(script), *options(**values, chromium=str(CHROMIUM))],
        cwd=packages,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"the browser run failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
