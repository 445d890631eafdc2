"""Our server as a benchmark target, started as an operator starts it.

``start`` runs ``vrm init`` and ``vrm vendors add`` in a temporary data
folder, then ``vrm serve`` with N workers on a free loopback port, SQLite by
default or the database given; ``stop()`` ends the server's process group and
removes the folder. Tokens come from the real authorization code flow: a
customer signs up, logs in, and answers the consent form (:func:`authorize`),
exactly as in the product (no shortcut into the database).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import httpx

from bench.lib.machine import free_port

# The commands of the environment running the benchmark (the project's venv).
BIN = Path(sys.executable).parent
REDIRECT_URI = "https://vendor.example/callback"
SCOPES = "profile.email:read preferences:read"
PURPOSE = "dpv:ServiceProvision"
PASSWORD = "benchmark passphrase 1"  # noqa: S105 - a throwaway bench customer
_INPUT = re.compile(r'<input type="(hidden|checkbox)" name="([a-z_]+)" value="([^"]*)"')


def env_for(data: Path, base: str, database_url: str = "", **extra: str) -> dict[str, str]:
    """This process's environment without its VRM_ settings, plus a server's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env.update(VRM_DATA_DIR=str(data), VRM_ISSUER=base, **extra)
    if database_url:
        env["VRM_DATABASE_URL"] = database_url
    return env


def init(env: dict[str, str], vendor: str, redirect_uri: str = REDIRECT_URI) -> dict[str, Any]:
    """``vrm init``, then ``vrm vendors add --json``: returns the vendor."""
    _vrm(env, "init")
    return add_vendor(env, vendor, redirect_uri)


def add_vendor(
    env: dict[str, str], vendor: str, redirect_uri: str = REDIRECT_URI
) -> dict[str, Any]:
    """``vrm vendors add --json``: the vendor, its client id and secret."""
    added = _vrm(env, "vendors", "add", "--name", vendor, "--redirect-uri", redirect_uri, "--json")
    return dict(json.loads(added))


def _vrm(env: dict[str, str], *args: str) -> str:
    try:
        done = subprocess.run(
            [str(BIN / "vrm"), *args], env=env, check=True, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{' '.join(map(str, exc.cmd[1:]))} failed: {exc.stderr}") from exc
    return done.stdout


class Served(NamedTuple):
    pid: int  # root of the server's process tree
    stop: Callable[[], None]


def serve(env: dict[str, str], port: int, log: Path, workers: int = 1) -> Served:
    """``vrm serve --workers N`` in its own process group, once it answers
    ``/healthz``: with several workers, each has a listening socket of its
    own and the background work runs once (vrm/serving.py), which uvicorn's
    own ``--workers`` does not give."""
    out = log.open("wb")
    server = subprocess.Popen(
        [
            str(BIN / "vrm"),
            *("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def stop() -> None:
        group = os.getpgid(server.pid) if server.poll() is None else None
        if group is not None:
            os.killpg(group, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(group, signal.SIGKILL)
                server.wait()
        out.close()

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return Served(server.pid, stop)
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop()
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.2)


def _unescape(value: str) -> str:
    return value.replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")


def authorize(
    browser: httpx.Client,
    client_id: str,
    client_secret: str,
    scope: str,
    *,
    prompt: str | None = None,
) -> dict[str, Any]:
    """The token response for ``scope``: the signed-in ``browser`` answers
    the consent page's form, and the code is exchanged with PKCE."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "purpose": PURPOSE,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    if prompt:
        params["prompt"] = prompt
    page = browser.get("/oauth/authorize", params=params)
    page.raise_for_status()
    form: dict[str, list[str]] = {}
    for kind, name, value in _INPUT.findall(page.text):
        form.setdefault("allow" if kind == "checkbox" else name, []).append(_unescape(value))
    form["decision"] = ["allow"]
    form["duration_days"] = ["365"]
    answer = browser.post("/oauth/authorize", data=form)
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{browser.base_url}".rstrip("/") + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret),
    )
    token.raise_for_status()
    return dict(token.json())


def sign_up(browser: httpx.Client, tag: str) -> None:
    """A new bench customer, signed in on ``browser``."""
    account = {"email": f"{tag}-{secrets.token_hex(4)}@example.org", "password": PASSWORD}
    browser.post("/api/v1/accounts", json=account).raise_for_status()
    browser.post("/api/v1/session", json=account).raise_for_status()


@dataclass
class Ours:
    base_url: str
    token_path: str
    client_id: str
    client_secret: str
    stop: Callable[[], None]
    pid: int
    browser: httpx.Client  # a signed-in bench customer
    # The server's environment, for `vrm` commands on its store.
    env: dict[str, str] = field(default_factory=dict)

    def refresh_tokens(self, n: int) -> list[str]:
        """``n`` refresh tokens, each of a grant of its own (``prompt=consent``
        makes each a new family)."""
        return [
            str(
                authorize(
                    self.browser, self.client_id, self.client_secret, SCOPES, prompt="consent"
                )["refresh_token"]
            )
            for _ in range(n)
        ]


def start(workers: int, database_url: str = "", **settings: str) -> Ours:
    """Our server, initialised, with a signed-in bench customer; ``settings``
    are more of its environment (``VRM_KEY_CUSTODY="customer"``)."""
    data = Path(tempfile.mkdtemp(prefix="vrm-bench-token-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = env_for(data, base, database_url, **settings)
    try:
        vendor = init(env, "Bench Vendor")
        server = serve(env, port, data / "server.log", workers)
    except BaseException:
        shutil.rmtree(data, ignore_errors=True)
        raise
    browser = httpx.Client(base_url=base)

    def stop() -> None:
        browser.close()
        server.stop()
        shutil.rmtree(data, ignore_errors=True)

    try:
        sign_up(browser, "bench")
    except BaseException:
        stop()
        raise
    return Ours(
        base,
        "/oauth/token",
        vendor["client_id"],
        vendor["client_secret"],
        stop,
        server.pid,
        browser,
        env,
    )
