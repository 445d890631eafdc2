"""Our authorization server as a benchmark target (used by bench/token.py).

Starts what an operator would: ``vrm init``, ``vrm vendors add``, then
uvicorn with N workers on a free loopback port, SQLite by default or the
database given, in a temporary data folder that ``stop()`` removes.
Refresh tokens come from the real authorization code flow: a customer signs
up, logs in, and answers the consent form for each token, exactly as in the
product (no shortcut into the database).
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
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
REDIRECT_URI = "https://vendor.example/callback"
SCOPES = "profile.email:read preferences:read"
PASSWORD = "benchmark passphrase 1"  # noqa: S105 - a throwaway bench customer
_INPUT = re.compile(r'<input type="(hidden|checkbox)" name="([a-z_]+)" value="([^"]*)"')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _unescape(value: str) -> str:
    return value.replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")


def _mint(base: str, client_id: str, client_secret: str, browser: httpx.Client) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "purpose": "dpv:ServiceProvision",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        # A fresh grant each time, so every token starts its own family.
        "prompt": "consent",
    }
    page = browser.get(f"{base}/oauth/authorize", params=params)
    page.raise_for_status()
    form: dict[str, list[str]] = {}
    for kind, name, value in _INPUT.findall(page.text):
        form.setdefault("allow" if kind == "checkbox" else name, []).append(_unescape(value))
    form["decision"] = ["allow"]
    form["duration_days"] = ["365"]
    answer = browser.post(f"{base}/oauth/authorize", data=form)
    location = answer.headers["location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    token = httpx.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        },
        auth=(client_id, client_secret),
    )
    token.raise_for_status()
    return str(token.json()["refresh_token"])


def start(
    workers: int, database_url: str = ""
) -> tuple[str, str, str, str, Callable[[int], list[str]], Callable[[], None], int]:
    """Returns base URL, token path, client id and secret, a refresh-token
    factory, a stop function and the server's pid."""
    data = Path(tempfile.mkdtemp(prefix="vrm-bench-token-"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env.update(VRM_DATA_DIR=str(data), VRM_ISSUER=base)
    if database_url:
        env["VRM_DATABASE_URL"] = database_url
    run = {"env": env, "check": True, "capture_output": True, "text": True}
    try:
        subprocess.run([str(BIN / "vrm"), "init"], **run)  # type: ignore[call-overload]
        added = subprocess.run(  # type: ignore[call-overload]
            [
                str(BIN / "vrm"),
                *("vendors", "add", "--name", "Bench Vendor", "--redirect-uri", REDIRECT_URI),
                "--json",
            ],
            **run,
        )
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(data, ignore_errors=True)  # nothing started yet: nothing else to stop
        raise RuntimeError(f"{' '.join(map(str, exc.cmd[1:]))} failed: {exc.stderr}") from exc
    vendor = json.loads(added.stdout)
    log = open(data / "server.log", "wb")
    server = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            "vrm.asgi:app",
            *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
            *("--no-access-log", "--log-level", "warning"),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def stop() -> None:
        with_group = os.getpgid(server.pid) if server.poll() is None else None
        if with_group is not None:
            os.killpg(with_group, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(with_group, signal.SIGKILL)
                server.wait()
        log.close()
        shutil.rmtree(data, ignore_errors=True)

    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            tail = (data / "server.log").read_text()[-2000:]
            stop()
            raise RuntimeError(tail)
        time.sleep(0.2)

    email = f"bench-{secrets.token_hex(4)}@example.org"
    browser = httpx.Client(base_url=base)
    browser.post("/api/v1/accounts", json={"email": email, "password": PASSWORD}).raise_for_status()
    browser.post("/api/v1/session", json={"email": email, "password": PASSWORD}).raise_for_status()

    def factory(n: int) -> list[str]:
        return [
            _mint(base, vendor["client_id"], vendor["client_secret"], browser) for _ in range(n)
        ]

    return (
        base,
        "/oauth/token",
        vendor["client_id"],
        vendor["client_secret"],
        factory,
        stop,
        server.pid,
    )
