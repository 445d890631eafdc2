"""The test kit: what tests share beyond fixtures.

One home for the checks and steps many test files need, so each states the
contract once: :func:`assert_problem` (an RFC 9457 answer, exactly),
:func:`log_in` and :func:`bearer` (the two ways a caller authenticates),
:func:`exported` (the customer's export), :func:`vrm` and :func:`vrm_script`
(the operator's command) and :class:`Clock` (the time the whole app sees;
the ``clock`` fixture in tests/conftest.py installs it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from vrm import cli
from vrm.settings import Settings

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:vrm:problem:"

# The title each problem type carries: the contract as docs/api.md and
# docs/vendors.md name the types, written out here rather than read from
# vrm.errors, so that a title changed by mistake fails a test.
TITLES = {
    "bad-request": "Bad request",
    "malformed-json": "Malformed JSON",
    "unauthenticated": "Authentication required",
    "invalid-token": "Authentication required",
    "forbidden": "Forbidden",
    "insufficient-scope": "Forbidden",
    "not-found": "Not found",
    "method-not-allowed": "Method not allowed",
    "conflict": "Conflict",
    "idempotency-key-reused": "Idempotency-Key reused with another request",
    "cursor-expired": "Cursor too old; resync from the start",
    "precondition-failed": "Precondition failed",
    "payload-too-large": "Request body too large",
    "unsupported-media-type": "Unsupported media type",
    "validation": "Request is invalid",
    "too-many-requests": "Too many failed attempts",
    "integrity": "Stored data failed its integrity check",
    "key-unavailable": "A key needed for this data is not available",
    "internal": "Internal server error",
}


def assert_problem(
    response: httpx.Response,
    status: int,
    type_: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    instance: str | None | object = ...,
    **extensions: Any,
) -> dict[str, Any]:
    """``response`` is exactly this RFC 9457 problem: the status (in the
    answer and in the body), ``application/problem+json``, the type
    (``"not-found"`` means ``urn:vrm:problem:not-found``; a full URI such
    as ``about:blank`` is taken as it is), its title (by default the one
    :data:`TITLES` names for the type), ``instance`` (by default the
    request's path; ``None`` when the answer must carry none),
    ``detail`` (a non-empty string when not given), and no member beyond
    ``extensions`` (pass ``unittest.mock.ANY`` for one whose value another
    assertion checks). Returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    type_uri = type_ if ":" in type_ else PROBLEM_BASE + type_
    if title is None:
        assert type_uri.startswith(PROBLEM_BASE), f"name the title of {type_uri}"
        title = TITLES[type_uri.removeprefix(PROBLEM_BASE)]
    if detail is None:
        assert isinstance(body.get("detail"), str), body
        assert body["detail"], body
        detail = body["detail"]
    expected = {"type": type_uri, "title": title, "status": status, "detail": detail}
    if instance is ...:
        instance = response.request.url.path
    if instance is not None:
        expected["instance"] = instance
    expected.update(extensions)
    assert body == expected
    return body


def bearer(token: str) -> dict[str, str]:
    """The RFC 6750 2.1 header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


def log_in(
    client: httpx.Client, email: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """Ask for a session (POST /api/v1/session); the answer, whatever it is."""
    return client.post(
        "/api/v1/session", json={"email": email, "password": password}, headers=headers
    )


def exported(client: httpx.Client) -> httpx.Response:
    """The logged-in customer's export (GET /api/v1/me/export), which succeeded."""
    r = client.get("/api/v1/me/export")
    assert r.status_code == 200, r.text
    return r


@dataclass
class Clock:
    """The time the whole app sees while the ``clock`` fixture is in use."""

    now: datetime

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Ran:
    """What a ``vrm`` command did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def _operator_env(settings: Settings, columns: int) -> dict[str, str | None]:
    """The operator's environment: the test's store and nothing else of VRM_*."""
    env: dict[str, str | None] = dict.fromkeys(
        (k for k in os.environ if k.startswith("VRM_")), None
    )
    env["VRM_DATA_DIR"] = str(settings.data_dir)
    env["VRM_KEY_CUSTODY"] = settings.key_custody
    if not settings.is_sqlite:
        env["VRM_DATABASE_URL"] = settings.database_url
    # Rich's width when stdout is not a terminal, unless a test asks for more.
    env["COLUMNS"] = str(columns)
    return env


def vrm(settings: Settings, *args: str, columns: int = 80) -> Ran:
    """``vrm ARGS`` on the test's store, in this process (typer's runner):
    the same code from argv to exit code as the installed script, without a
    new interpreter importing the whole app (seconds a run)."""
    result = CliRunner().invoke(cli.app, list(args), env=_operator_env(settings, columns))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Ran(result.exit_code, result.stdout, result.stderr)


def vrm_script(settings: Settings, *args: str, columns: int = 80) -> Ran:
    """``vrm ARGS`` as the operator runs it: the installed script in a
    process of its own, for the tests that prove the script itself (its
    environment, exit code, terminal width) or start a server."""
    merged = {**os.environ, **_operator_env(settings, columns)}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "vrm"), *args],
        env={k: v for k, v in merged.items() if v is not None},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)
