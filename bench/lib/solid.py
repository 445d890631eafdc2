"""The Community Solid Server, the personal-data-store peer (bench/data_api.py).

Starts ``@solid/community-server`` (pinned in ``bench/solid/package.json`` and
its lockfile; ``npm ci`` first when the installed copy is missing or another
version) file-backed in a fresh temporary folder, on a free port bound to
127.0.0.1 by ``bench/solid/loopback.cjs`` (the server has no host option).
Then it does what a pod owner does, through the account JSON API only: an
account, a password login, a pod, and client credentials for the pod's
WebID. Access tokens come from ``/.oidc/token`` with ``client_credentials``
and ``scope=webid``; the server accepts them as plain Bearer tokens.
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

import httpx

from bench.lib.load import Token
from bench.lib.machine import free_port

SOLID_DIR = Path(__file__).resolve().parent.parent / "solid"
PACKAGE = "@solid/community-server"
START_TIMEOUT = 120.0  # seconds; it takes ~7 s on an idle machine


def _pinned_version() -> str:
    return str(json.loads((SOLID_DIR / "package.json").read_text())["dependencies"][PACKAGE])


def ensure_node_modules() -> None:
    """``npm ci`` in bench/solid unless the pinned version is installed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not on PATH; the Solid side needs Node.js 20 and npm")
    installed = SOLID_DIR / "node_modules" / PACKAGE / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == _pinned_version():
        return
    print(f"installing {PACKAGE} (npm ci, about a minute) ...", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=SOLID_DIR, check=True
    )


class SolidServer:
    """A running Community Solid Server with one account, one pod and one
    client credential; ``stop()`` ends the node process group and removes
    the data folder."""

    def __init__(self) -> None:
        ensure_node_modules()
        self.folder = Path(tempfile.mkdtemp(prefix="vrm-bench-solid-"))
        port = free_port()
        # localhost, not 127.0.0.1: its token verifier refuses a non-https
        # issuer unless the host is localhost.
        self.base_url = f"http://localhost:{port}/"
        # It reads every CSS_* variable as an option; start from none.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSS_")}
        env["BENCH_EXIT_ON_STDIN_EOF"] = "1"
        self._log = open(self.folder / "server.log", "wb")  # closed in stop()
        self._proc = subprocess.Popen(
            [
                "node",
                *("--require", str(SOLID_DIR / "loopback.cjs")),
                str(SOLID_DIR / "node_modules" / PACKAGE / "bin" / "server.js"),
                *("-c", "@css:config/file.json", "-f", str(self.folder / "data")),
                *("-p", str(port), "-b", self.base_url, "-l", "warn"),
            ],
            cwd=SOLID_DIR,
            env=env,
            stdin=subprocess.PIPE,  # never written; node exits when it closes (if we die)
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended by stop()
        )
        self.pid = self._proc.pid
        self._http = httpx.Client(base_url=self.base_url, timeout=30)
        try:
            self._wait_ready()
            self._provision()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with contextlib.suppress(httpx.TransportError):
                if self._http.get(".account/").status_code == 200:
                    return
            if self._proc.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the Community Solid Server did not start:\n{log}")
            time.sleep(0.25)

    def _provision(self) -> None:
        http = self._http
        created = http.post(".account/account/")
        created.raise_for_status()
        http.headers["Authorization"] = f"CSS-Account-Token {created.json()['authorization']}"
        controls = http.get(".account/").json()["controls"]
        http.post(
            controls["password"]["create"],
            json={"email": "bench@example.org", "password": secrets.token_urlsafe(16)},
        ).raise_for_status()
        pod = http.post(controls["account"]["pod"], json={"name": "bench"})
        pod.raise_for_status()
        self.pod_url: str = pod.json()["pod"]
        self.webid: str = pod.json()["webId"]
        credentials = http.post(
            controls["account"]["clientCredentials"],
            json={"name": "bench-reader", "webId": self.webid},
        )
        credentials.raise_for_status()
        self._client = (credentials.json()["id"], credentials.json()["secret"])
        del http.headers["Authorization"]

    def token(self) -> Token:
        """A fresh Bearer access token for the pod owner's WebID."""
        answer = self._http.post(
            ".oidc/token",
            data={"grant_type": "client_credentials", "scope": "webid"},
            auth=self._client,
        )
        answer.raise_for_status()
        payload = answer.json()
        if payload.get("token_type", "").lower() != "bearer":
            raise RuntimeError(f"expected a Bearer token, got {payload.get('token_type')!r}")
        return Token(payload["access_token"], time.time() + int(payload["expires_in"]))

    def put(self, name: str, body: bytes, token: Token) -> str:
        """Store ``body`` as ``application/json`` at ``<pod>/<name>``; returns
        its path. New resources inherit the pod's owner-only ACL."""
        url = self.pod_url + name
        answer = self._http.put(
            url,
            content=body,
            headers={"Authorization": f"Bearer {token.value}", "Content-Type": "application/json"},
        )
        answer.raise_for_status()
        return httpx.URL(url).raw_path.decode()

    def stop(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        self._http.close()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
