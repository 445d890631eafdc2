"""X-Forwarded-For and X-Forwarded-Proto count only from the proxies the
operator lists (VRM_TRUSTED_PROXIES), against the real ``vrm serve``: a
client that sends them itself picks neither the address the login throttle
counts nor the scheme that makes cookies Secure."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from unittest.mock import ANY

import httpx
import pytest

from tests.kit import assert_problem, log_in
from tests.liveserver import LiveServer, live_server, vrm_command
from tests.vrm.test_sessions import TOO_MANY

ROOT = Path(__file__).resolve().parents[2]
WRONG = "not the right passphrase"
FAILURES = 5  # VRM_LOGIN_MAX_FAILURES's default


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default: no proxy trusted, so clients reach the server directly."""
    with live_server(tmp_path_factory.mktemp("no-proxy")) as live:
        yield live


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Behind a proxy on 127.0.0.1, which the operator lists."""
    settings = {"VRM_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}
    with live_server(tmp_path_factory.mktemp("proxy"), settings=settings) as live:
        yield live


def log_in_to(
    server: LiveServer, email: str, password: str, headers: dict[str, str]
) -> httpx.Response:
    """A login from a client with no cookies yet."""
    with httpx.Client(base_url=server.url, timeout=10) as c:
        return log_in(c, email, password, headers)


def cookie_is_secure(response: httpx.Response, name: str) -> bool:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return bool(jar[name]["secure"])


def forwarded_for(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


HTTPS = {"X-Forwarded-Proto": "https"}


def attack_then_log_in_from_elsewhere(server: LiveServer) -> httpx.Response:
    """Five wrong passwords said to come from one address, then the right
    one said to come from another."""
    customer = server.new_customer()
    for _ in range(FAILURES):
        r = log_in_to(server, customer.email, WRONG, forwarded_for("198.51.100.1"))
        assert r.status_code == 401, r.text
    return log_in_to(server, customer.email, customer.password, forwarded_for("198.51.100.2"))


def test_a_spoofed_forwarded_for_does_not_change_the_throttled_address(
    direct: LiveServer,
) -> None:
    r = attack_then_log_in_from_elsewhere(direct)
    assert_problem(r, 429, "too-many-requests", detail=TOO_MANY, retry_after=ANY)


def test_a_listed_proxy_tells_its_clients_apart(proxied: LiveServer) -> None:
    r = attack_then_log_in_from_elsewhere(proxied)
    assert r.status_code == 200, r.text


def test_a_listed_proxy_still_throttles_each_of_its_clients(proxied: LiveServer) -> None:
    customer = proxied.new_customer()
    for _ in range(FAILURES):
        r = log_in_to(proxied, customer.email, WRONG, forwarded_for("198.51.100.3"))
        assert r.status_code == 401, r.text
    r = log_in_to(proxied, customer.email, customer.password, forwarded_for("198.51.100.3"))
    assert r.status_code == 429, r.text


def test_a_spoofed_forwarded_proto_does_not_make_cookies_secure(direct: LiveServer) -> None:
    customer = direct.new_customer()
    r = log_in_to(direct, customer.email, customer.password, HTTPS)
    assert r.status_code == 200, r.text
    assert cookie_is_secure(r, "vrm_session") is False
    page = httpx.get(f"{direct.url}/login", headers=HTTPS, timeout=10)
    assert page.status_code == 200
    assert cookie_is_secure(page, "vrm_login_csrf") is False


def test_a_listed_proxy_saying_https_makes_cookies_secure(proxied: LiveServer) -> None:
    customer = proxied.new_customer()
    r = log_in_to(proxied, customer.email, customer.password, HTTPS)
    assert r.status_code == 200, r.text
    assert cookie_is_secure(r, "vrm_session") is True
    page = httpx.get(f"{proxied.url}/login", headers=HTTPS, timeout=10)
    assert page.status_code == 200
    assert cookie_is_secure(page, "vrm_login_csrf") is True


def test_serve_refuses_a_trusted_proxy_that_is_not_an_address(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env.update(VRM_DATA_DIR=str(tmp_path), VRM_TRUSTED_PROXIES="*")
    done = subprocess.run(
        [vrm_command(), "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "vrm: bad setting trusted_proxies: '*' is not an IP address or network\n"


# Every reader of the client's address or scheme goes through vrm/deps.py,
# where the rule above is written down once.
_READS = re.compile(
    r"\.client\.host|\.url\.scheme|\[[\"'](client|scheme)[\"']\]|x-forwarded-(for|proto)", re.I
)


def test_only_one_module_reads_the_client_address_or_scheme() -> None:
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in ("vrm", "consent")
        for path in (ROOT / package).rglob("*.py")
        if any(
            _READS.search(line)
            for line in path.read_text().splitlines()
            if not line.lstrip().startswith("#")
        )
    )
    assert readers == ["vrm/deps.py"]
