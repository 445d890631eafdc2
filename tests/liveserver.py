"""The real server in a subprocess, for clients that talk to it over HTTP.

``live_server()`` does what an operator does: ``vrm init``, ``vrm vendors
add``, then ``vrm serve`` on a free loopback port with its own data
directory, and waits for ``/healthz``. Customers sign up through the HTTP
API, as they would. At the end the server is stopped (its whole process
group) and nothing is left running. The server's output goes to a log file
in the data directory, and its tail is shown when start-up fails.
``restarted()`` serves the same data directory again, once stopped, with a
setting changed.

:class:`Browser` is the customer's user agent in front of it: a cookie jar,
redirects followed on the server only, the login and consent forms read
from the HTML and submitted as a browser would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
from typer.testing import CliRunner

from tests.consent.conftest import read_form
from vrm import cli

PASSWORD = "correct horse battery staple"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Argon2id at test strength: same algorithm, a fraction of the cost.
FAST_HASH_ENV = {
    "VRM_ARGON2_TIME_COST": "1",
    "VRM_ARGON2_MEMORY_KIB": "1024",
    "VRM_ARGON2_PARALLELISM": "1",
}


@dataclass(frozen=True)
class RegisteredVendor:
    client_id: str
    client_secret: str
    redirect_uri: str


@dataclass(frozen=True)
class Customer:
    email: str
    password: str


@dataclass(frozen=True)
class LiveServer:
    url: str
    """The base URL, which is also the issuer identifier (no trailing slash)."""
    data_dir: Path
    vendor: RegisteredVendor
    log: Path
    # The VRM_* environment its `vrm` commands run with (for a `vrm worker`
    # beside it).
    env: dict[str, str] = field(default_factory=dict)
    pid: int = 0
    """The ``vrm serve`` process (with several workers, their supervisor)."""

    def new_customer(self, label: str = "customer") -> Customer:
        """Sign up a customer nobody else uses, through the public API."""
        email = f"{label}-{secrets.token_hex(4)}@example.org"
        r = httpx.post(
            f"{self.url}/api/v1/accounts", json={"email": email, "password": PASSWORD}, timeout=10
        )
        assert r.status_code == 201, r.text
        return Customer(email=email, password=PASSWORD)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vrm_command() -> str:
    """The ``vrm`` script of the virtualenv running the tests."""
    script = Path(sys.executable).parent / "vrm"
    if not script.exists():
        raise RuntimeError(f"{script} is missing: install the project (pip install -e .)")
    return str(script)


def _env(data_dir: Path, issuer: str, database_url: str | None = None) -> dict[str, str]:
    # Nothing from the caller's VRM_* settings (a database URL, a key dir)
    # may leak into the throwaway server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env.update(FAST_HASH_ENV)
    env["VRM_DATA_DIR"] = str(data_dir)
    env["VRM_ISSUER"] = issuer
    if database_url is not None:
        env["VRM_DATABASE_URL"] = database_url
    return env


def _vrm(env: dict[str, str], *args: str) -> str:
    """``vrm init`` or ``vrm vendors add`` as the operator runs them before
    ``vrm serve``, on the server's environment, in this process (typer's
    runner): a new interpreter importing the whole app costs seconds, and
    the installed script is proven by tests/consent/test_vendors.py. Only
    ``vrm serve`` needs a process of its own."""
    # Every VRM_* of env, and none of this process's own.
    overrides = {k: env.get(k) for k in {*os.environ, *env} if k.startswith("VRM_")}
    result = CliRunner().invoke(cli.app, list(args), env=overrides)
    if result.exit_code != 0:
        raise RuntimeError(
            f"vrm {' '.join(args)} failed ({result.exit_code}): {result.stderr}"
        ) from result.exception
    return result.stdout


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vrm serve exited with {process.returncode}:\n{_tail(log)}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"vrm serve did not answer /healthz in {START_TIMEOUT:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (uvicorn and anything it
    started), SIGKILL if it does not go in time."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
    except ProcessLookupError:
        process.wait(STOP_TIMEOUT)


@contextmanager
def live_server(
    data_dir: Path,
    vendor_name: str = "Foreign Client Tests",
    settings: dict[str, str] | None = None,
    notify_uri: str | None = None,
    *,
    workers: int = 1,
    database_url: str | None = None,
) -> Iterator[LiveServer]:
    """Start ``vrm serve`` on data_dir (created if needed) with one vendor
    whose redirect URI is a loopback callback nobody listens on: clients
    read the code from the redirect and never fetch it (and whose revocation
    notices go to ``notify_uri``, if given). ``settings`` are further
    ``VRM_*`` variables for every ``vrm`` command; ``workers`` is
    ``--workers``; ``database_url`` a database instead of SQLite."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**_env(data_dir, url, database_url), **(settings or {})}
    _vrm(env, "init")
    vendor = _add_vendor(env, vendor_name, notify_uri)
    log = data_dir / "server.log"
    process = _serve(env, port, log, workers)
    try:
        _wait_healthy(process, url, log)
        yield LiveServer(
            url=url, data_dir=data_dir, vendor=vendor, log=log, env=env, pid=process.pid
        )
    finally:
        _stop(process)


@contextmanager
def restarted(stopped: LiveServer, settings: dict[str, str]) -> Iterator[LiveServer]:
    """``vrm serve`` again on a stopped server's data directory, address
    and vendor, with ``settings`` changed (say ``VRM_KEY_CUSTODY``): what an
    operator does who edits a setting and restarts. No ``vrm init`` and no
    new vendor; ``vrm serve`` applies any migrations itself."""
    env = {**stopped.env, **settings}
    port = urlsplit(stopped.url).port
    assert port is not None, stopped.url
    process = _serve(env, port, stopped.log)
    try:
        _wait_healthy(process, stopped.url, stopped.log)
        yield replace(stopped, env=env, pid=process.pid)
    finally:
        _stop(process)


def _add_vendor(env: dict[str, str], name: str, notify_uri: str | None = None) -> RegisteredVendor:
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    extra = ("--notify-uri", notify_uri) if notify_uri is not None else ()
    out = _vrm(
        env, "vendors", "add", "--name", name, "--redirect-uri", redirect_uri, *extra, "--json"
    )
    registered = json.loads(out.strip().splitlines()[-1])
    return RegisteredVendor(
        client_id=registered["client_id"],
        client_secret=registered["client_secret"],
        redirect_uri=redirect_uri,
    )


def _serve(env: dict[str, str], port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    """``vrm serve`` in a process group of its own, its output appended to log."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [
                vrm_command(),
                *("serve", "--host", "127.0.0.1", "--port", str(port)),
                *("--workers", str(workers)),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Restartable:
    """``vrm serve`` on one data directory (and database), which a test can
    kill with SIGKILL and start again on the same port: a crash, not a
    shutdown. ``vrm init`` and ``vrm vendors add`` run once, as an
    operator's would."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "server.log"
        self._env = _env(data_dir, self.url, database_url)
        _vrm(self._env, "init")
        self.vendor = _add_vendor(self._env, "Restartable Tests")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = _serve(self._env, self.port, self.log)
        _wait_healthy(self._process, self.url, self.log)

    def kill(self) -> None:
        """SIGKILL to the server's whole process group: nothing runs at exit."""
        assert self._process is not None
        os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if self._process is not None:
            _stop(self._process)


class Browser:
    """A customer's browser: follows redirects within the server, stops at
    the vendor's redirect URI (which it never fetches), and records each
    request as ``"METHOD /path status"`` in :attr:`trail`."""

    def __init__(self, server: LiveServer, customer: Customer) -> None:
        self.server = server
        self.customer = customer
        self.http = httpx.Client(follow_redirects=False, timeout=10)
        self.trail: list[str] = []

    def close(self) -> None:
        self.http.close()

    def go(self, method: str, url: str, data: Any = None) -> httpx.Response:
        for _ in range(10):
            r = self.http.request(method, url, data=data)
            self.trail.append(f"{method} {urlsplit(url).path} {r.status_code}")
            if r.status_code not in (301, 302, 303, 307, 308):
                assert r.status_code == 200, r.text
                return r
            # RFC 9700 4.12: 303 after a POST, never 307.
            assert method == "GET" or r.status_code == 303, r.status_code
            location = urljoin(url, r.headers["location"])
            if location.startswith(self.server.vendor.redirect_uri + "?"):
                return r
            assert location.startswith(self.server.url + "/"), location
            method, url, data = "GET", location, None
        raise AssertionError("too many redirects")

    def authorize(self, url: str, *, untick: tuple[str, ...] = (), decision: str = "allow") -> str:
        """From an authorization URL to the redirect: log in if asked, answer
        the consent page (every box ticked but ``untick``, the longest
        duration). Returns the redirect's Location."""
        r = self.go("GET", url)
        if r.status_code == 200 and r.url.path == "/login":
            form = read_form(r.text)
            body = {**form.hidden, "email": self.customer.email, "password": self.customer.password}
            r = self.go("POST", urljoin(str(r.url), form.action), body)
        if r.status_code == 200:
            assert r.url.path == "/oauth/authorize", r.text
            form = read_form(r.text)
            consent: dict[str, Any] = dict(form.hidden)
            consent["allow"] = [s for s in form.checkboxes if s not in untick]
            consent["duration_days"] = form.selects["duration_days"][-1]
            consent["decision"] = decision
            r = self.go("POST", urljoin(str(r.url), form.action), consent)
        assert r.status_code == 303, r.text
        return str(r.headers["location"])


def grant_on_consent_page(server: LiveServer, browser: Browser, scope: str) -> dict[str, Any]:
    """The browser's customer allows ``scope`` to the server's vendor on
    the real consent page (authorization code with PKCE); the vendor swaps
    the code for tokens. The token endpoint's answer (``grant_id``,
    ``access_token``, ...)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": server.vendor.client_id,
        "redirect_uri": server.vendor.redirect_uri,
        "scope": scope,
        "state": "s",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "purpose": "dpv:ServiceProvision",
    }
    location = browser.authorize(f"{server.url}/oauth/authorize?{urlencode(query)}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    r = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": server.vendor.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(server.vendor.client_id, server.vendor.client_secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())
