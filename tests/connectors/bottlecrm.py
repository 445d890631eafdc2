"""BottleCRM (PyPI ``django-crm``), a real open-source CRM, on loopback for
the connector's integration tests.

``scripts/ensure-bottlecrm.sh`` installs it once per machine into its own
virtualenv and migrates a template SQLite database; ``bottlecrm_server`` copies
that template into the test's directory, gives it an org, an admin and a
personal access token, and runs ``django-admin runserver`` in a process group
of its own, which it ends on exit. What the contacts API does is written down
in BOTTLECRM.md beside this file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

VERSION = "1.35.0"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "scripts" / "bottlecrm"
ENSURE = "scripts/ensure-bottlecrm.sh"

DEFAULT_SCOPES = ("contacts:read", "contacts:write")
# The contact custom field the connector keeps its pairwise subject id in.
# BottleCRM silently drops custom_fields keys its org has not defined.
SUBJECT_FIELD = "vrm_subject"

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
PORT_ATTEMPTS = 3


class BottleCRMNotInstalled(RuntimeError):
    """The virtualenv or template database of ensure-bottlecrm.sh is missing or stale."""


class BottleCRMStartError(RuntimeError):
    """The server did not answer its health check; the message ends with its log."""


class _PortTaken(BottleCRMStartError):
    pass


@dataclass(frozen=True)
class BottleCRM:
    """A running BottleCRM, its admin's token and the org that token acts in.

    The token carries its org: no ``org`` header is needed. ``org_id`` is for
    assertions on response bodies.
    """

    base_url: str
    token: str
    org_id: str
    subject_field: str
    log_path: Path
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True)
class Installation:
    home: Path
    python: Path
    django_admin: Path
    template: Path


def bottlecrm_home() -> Path:
    return Path(os.environ.get("BOTTLECRM_HOME") or Path.home() / ".cache" / "vrm-bottlecrm")


def venv_exists() -> bool:
    return (bottlecrm_home() / "venv" / "bin" / "python").exists()


def expected_stamp() -> str:
    """The stamp ensure-bottlecrm.sh writes for this checkout's constraints."""
    digest = hashlib.sha256((CONFIG_DIR / "constraints.txt").read_bytes()).hexdigest()
    return f"django-crm=={VERSION} constraints-sha256={digest[:16]}"


def installation() -> Installation:
    """The installed harness, or BottleCRMNotInstalled saying what to run."""
    home = bottlecrm_home()
    found = Installation(
        home=home,
        python=home / "venv" / "bin" / "python",
        django_admin=home / "venv" / "bin" / "django-admin",
        template=home / "template.sqlite3",
    )
    stamp = home / "stamp"
    if not (found.python.exists() and found.template.exists() and stamp.exists()):
        raise BottleCRMNotInstalled(
            f"BottleCRM {VERSION} is not installed in {home}: run {ENSURE} first"
        )
    if stamp.read_text().strip() != expected_stamp():
        raise BottleCRMNotInstalled(
            f"BottleCRM in {home} was built from other constraints: run {ENSURE} again"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _environment(database: Path, files: Path) -> dict[str, str]:
    # A clean environment: crm.settings reads dozens of variables (DEBUG,
    # DBHOST, CACHE_URL, ...) and the test process's own must not leak in.
    env = {key: os.environ[key] for key in ("PATH", "LANG", "TMPDIR") if key in os.environ}
    env.update(
        HOME=str(files),
        PYTHONPATH=str(CONFIG_DIR),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="vrm_bottlecrm_settings",
        BOTTLECRM_DB=str(database),
        BOTTLECRM_LOGS=str(files),
    )
    return env


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _seed(
    found: Installation,
    env: dict[str, str],
    files: Path,
    scopes: Sequence[str],
    custom_fields: Sequence[str],
) -> dict[str, str]:
    request = {
        "email": "connector-admin@example.test",
        "org_name": "VRM connector tests",
        "scopes": list(scopes),
        "contact_custom_fields": [{"key": key, "field_type": "text"} for key in custom_fields],
    }
    done = subprocess.run(
        [str(found.python), str(CONFIG_DIR / "vrm_bottlecrm_seed.py")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env=env,
        cwd=files,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise BottleCRMStartError(f"seeding the BottleCRM database failed:\n{done.stderr[-4000:]}")
    answer: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group, then SIGKILL; runserver starts no children
    with --noreload, but the group catches any a future version adds."""
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # The leader is reaped; make sure none of its group outlived it.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _start(
    found: Installation, env: dict[str, str], files: Path, log_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(found.django_admin), "runserver", f"127.0.0.1:{port}", "--noreload"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=files,
            # Its own process group, so _stop reaches everything it starts.
            start_new_session=True,
        )
    return process, f"http://127.0.0.1:{port}"


def _wait_until_healthy(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if "port is already in use" in _tail(log, lines=5):
                    raise _PortTaken(base_url)
                raise BottleCRMStartError(
                    f"BottleCRM exited with {process.returncode} before answering; "
                    f"{log}:\n{_tail(log)}"
                )
            try:
                if client.get("/healthz/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise BottleCRMStartError(
        f"BottleCRM did not answer /healthz/ within {START_TIMEOUT:.0f} s; {log}:\n{_tail(log)}"
    )


@contextmanager
def bottlecrm_server(
    tmp_dir: Path,
    *,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    contact_custom_fields: Sequence[str] = (SUBJECT_FIELD,),
) -> Iterator[BottleCRM]:
    """Run BottleCRM on a free 127.0.0.1 port with its database in ``tmp_dir``.

    The org defines ``contact_custom_fields`` as text fields on contacts (the
    first is ``BottleCRM.subject_field``); the token holds ``scopes``. The
    server's output is in ``tmp_dir/bottlecrm.log``.
    """
    found = installation()
    files = Path(tmp_dir)
    files.mkdir(parents=True, exist_ok=True)
    database = files / "bottlecrm.sqlite3"
    shutil.copyfile(found.template, database)
    env = _environment(database, files)
    log_path = files / "bottlecrm.log"
    process, base_url = _start(found, env, files, log_path)
    try:
        # Seeding while the server boots saves about two seconds a test; the
        # server reads nothing the seed writes until it is asked.
        seeded = _seed(found, env, files, scopes, contact_custom_fields)
        for attempt in range(PORT_ATTEMPTS):
            try:
                _wait_until_healthy(process, base_url, log_path)
                break
            except _PortTaken:
                # Another process took the port between _free_port and bind.
                if attempt == PORT_ATTEMPTS - 1:
                    raise
                process, base_url = _start(found, env, files, log_path)
        yield BottleCRM(
            base_url=base_url,
            token=seeded["token"],
            org_id=seeded["org_id"],
            subject_field=contact_custom_fields[0] if contact_custom_fields else "",
            log_path=log_path,
            pid=process.pid,
        )
    finally:
        _stop(process)
