"""``vrm serve --workers 2``: real processes, each with a socket of its own.

What one worker changes, the other honours at once: the servers keep no
copy of a token, a grant or a session (docs/operations.md#throughput-and-workers).
Each test finds out which worker holds each of its connections (from
/proc: the server side of a loopback connection belongs to one process),
changes something through one worker and asks the other. The background
work runs once, in the supervisor, and the supervisor takes its workers
with it when it stops, or when one of them dies.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.kit import bearer
from tests.liveserver import (
    Browser,
    Customer,
    LiveServer,
    grant_on_consent_page,
    live_server,
)
from vrm import serving

pytestmark = pytest.mark.skipif(
    not Path("/proc/net/tcp").exists(), reason="finds connections' processes in Linux's /proc"
)

CONNECTIONS = 16
Pair = tuple[httpx.Client, httpx.Client]
WAIT_SECONDS = 15.0
# Revocation notices the background work pushes in its test.
NOTICES = 4


# -- which process holds a connection ------------------------------------------


def _inodes(local_port: int, remote_port: int) -> set[str]:
    """The socket inodes of loopback TCP connections from ``local_port`` to
    ``remote_port`` (/proc/net/tcp)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
            if int(local, 16) == local_port and int(remote, 16) == remote_port:
                found.add(f"socket:[{fields[9]}]")
    return found


def owner(pids: list[int], local_port: int, remote_port: int) -> int | None:
    """Which of ``pids`` holds the connection from ``local_port`` to
    ``remote_port``."""
    wanted = _inodes(local_port, remote_port)
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                    return pid
            except OSError:
                continue
    return None


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(raw[raw.rindex(")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


# -- a vendor's notice endpoint that notes who pushed --------------------------


class Pushes:
    """A notice endpoint that records, for every push, the process that sent
    it (found while the connection is open)."""

    def __init__(self) -> None:
        self.pushers: list[int | None] = []
        self.candidates: list[int] = []
        pushes = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sender = owner(pushes.candidates, self.client_address[1], pushes.port)
                pushes.pushers.append(sender)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- the server ------------------------------------------------------------------


@dataclass
class Workers:
    server: LiveServer
    pushes: Pushes
    workers: list[int]

    def connections(self, count: int = CONNECTIONS) -> dict[int, list[httpx.Client]]:
        """``count`` clients of one keep-alive connection each, by the worker
        that holds it; every worker holds some."""
        by_worker: dict[int, list[httpx.Client]] = {pid: [] for pid in self.workers}
        port = _port(self.server.url)
        for _ in range(count):
            client = httpx.Client(
                base_url=self.server.url, timeout=10, limits=httpx.Limits(max_connections=1)
            )
            r = client.get("/healthz")
            assert r.status_code == 200, r.text
            local = r.extensions["network_stream"].get_extra_info("client_addr")[1]
            pid = owner(self.workers, port, local)
            assert pid is not None, "no worker holds the connection"
            by_worker[pid].append(client)
        assert all(by_worker.values()), {pid: len(c) for pid, c in by_worker.items()}
        return by_worker


def _database(postgres_url: str) -> str:
    """A database of its own in the test cluster: ``vrm init`` makes keys
    that no row there may already need."""
    name = f"vrm_workers_{secrets.token_hex(4)}"
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def workers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    database_url = None
    if request.param == "postgresql":
        database_url = _database(request.getfixturevalue("postgres_url"))
    pushes = Pushes()
    try:
        with live_server(
            tmp_path_factory.mktemp("workers"),
            notify_uri=f"http://127.0.0.1:{pushes.port}/notices",
            workers=2,
            database_url=database_url,
        ) as server:
            _started(server)
            pids = children(server.pid)
            pushes.candidates = [server.pid, *pids]
            assert len(pids) == 2, pids
            yield Workers(server, pushes, pids)
    finally:
        pushes.close()


@pytest.fixture
def pair(workers: Workers) -> Iterator[Pair]:
    """A client held by one worker and a client held by the other."""
    by_worker = workers.connections()
    try:
        first, second = (clients[0] for clients in by_worker.values())
        yield first, second
    finally:
        for clients in by_worker.values():
            for client in clients:
                client.close()


def _grant(workers: Workers, scope: str = "profile:read") -> tuple[Customer, dict[str, Any]]:
    return _grant_on(workers.server, scope)


def _grant_on(server: LiveServer, scope: str = "profile:read") -> tuple[Customer, dict[str, Any]]:
    customer = server.new_customer()
    browser = Browser(server, customer)
    try:
        return customer, grant_on_consent_page(server, browser, scope)
    finally:
        browser.close()


def _logged_in(client: httpx.Client, customer: Customer) -> None:
    r = client.post(
        "/api/v1/session", json={"email": customer.email, "password": customer.password}
    )
    assert r.status_code == 200, r.text


# -- the tests -------------------------------------------------------------------


def test_each_worker_listens_on_a_socket_of_its_own(workers: Workers) -> None:
    port = _port(workers.server.url)
    listening = {owner([pid], port, 0) for pid in workers.workers}
    assert listening == set(workers.workers)
    assert owner([workers.server.pid], port, 0) is None
    assert serving.reuse_port_available()


def test_a_token_revoked_through_one_worker_is_refused_by_the_other(
    workers: Workers, pair: Pair
) -> None:
    _, tokens = _grant(workers)
    one, other = pair
    assert other.get("/v1/data", headers=bearer(tokens["access_token"])).status_code == 200
    vendor = workers.server.vendor
    r = one.post(
        "/oauth/revoke",
        data={"token": tokens["access_token"]},
        auth=(vendor.client_id, vendor.client_secret),
    )
    assert r.status_code == 200, r.text
    r = other.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401, r.text


def test_a_grant_revoked_through_one_worker_ends_its_tokens_on_the_other(
    workers: Workers, pair: Pair
) -> None:
    customer, tokens = _grant(workers)
    one, other = pair
    assert other.get("/v1/data", headers=bearer(tokens["access_token"])).status_code == 200
    _logged_in(one, customer)
    r = one.delete(f"/api/v1/me/grants/{tokens['grant_id']}")
    assert r.status_code == 204, r.text
    r = other.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401, r.text
    vendor = workers.server.vendor
    r = other.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(vendor.client_id, vendor.client_secret),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"


def test_a_narrowed_grant_narrows_reads_on_the_other_worker(workers: Workers, pair: Pair) -> None:
    customer, tokens = _grant(workers, "profile:read preferences:read")
    one, other = pair
    r = other.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    assert {"profile", "preferences"} <= r.json().keys()
    _logged_in(one, customer)
    r = one.patch(f"/api/v1/me/grants/{tokens['grant_id']}", json={"scopes": ["profile:read"]})
    assert r.status_code == 200, r.text
    r = other.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    assert "preferences" not in r.json()


def test_a_session_ended_through_one_worker_is_refused_by_the_other(
    workers: Workers, pair: Pair
) -> None:
    customer = workers.server.new_customer()
    one, other = pair
    _logged_in(one, customer)
    other.cookies = one.cookies
    assert other.get("/api/v1/me").status_code == 200
    assert one.delete("/api/v1/session").status_code == 204
    assert other.get("/api/v1/me").status_code == 401


def test_background_work_runs_once_in_the_supervisor(workers: Workers, pair: Pair) -> None:
    one, _ = pair
    granted = [_grant(workers) for _ in range(NOTICES)]
    before = len(workers.pushes.pushers)
    for customer, tokens in granted:
        _logged_in(one, customer)
        assert one.delete(f"/api/v1/me/grants/{tokens['grant_id']}").status_code == 204
    deadline = time.monotonic() + WAIT_SECONDS
    while len(workers.pushes.pushers) < before + NOTICES and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # a second push of a notice, had anyone made one
    # Every notice pushed once, each by the supervisor: had the workers
    # run the background work too, they would have claimed some.
    assert workers.pushes.pushers[before:] == [workers.server.pid] * NOTICES


def test_one_worker_is_one_process_that_runs_the_background_work_itself(
    tmp_path: Path,
) -> None:
    pushes = Pushes()
    try:
        with live_server(
            tmp_path / "var", notify_uri=f"http://127.0.0.1:{pushes.port}/notices"
        ) as server:
            assert children(server.pid) == []
            pushes.candidates = [server.pid]
            customer, tokens = _grant_on(server)
            with httpx.Client(base_url=server.url, timeout=10) as http:
                _logged_in(http, customer)
                assert http.delete(f"/api/v1/me/grants/{tokens['grant_id']}").status_code == 204
            deadline = time.monotonic() + WAIT_SECONDS
            while not pushes.pushers and time.monotonic() < deadline:
                time.sleep(0.1)
            assert pushes.pushers == [server.pid]
    finally:
        pushes.close()


# -- stopping ----------------------------------------------------------------------


def _started(server: LiveServer, workers: int = 2) -> None:
    """Wait until every worker has started (/healthz may answer from one)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while server.log.read_text().count("Application startup complete") < workers:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.1)


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(tmp_path / "var", workers=2) as server:
        _started(server)
        yield server


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)]


def test_stopping_the_supervisor_stops_every_worker(fresh: LiveServer) -> None:
    pids = children(fresh.pid)
    assert len(pids) == 2, pids
    os.kill(fresh.pid, signal.SIGTERM)  # the supervisor alone, not its group
    _wait_gone([fresh.pid, *pids])
    log = fresh.log.read_text()
    assert log.count("Finished server process") == 2, log


def test_a_worker_that_dies_stops_the_others(fresh: LiveServer) -> None:
    first, second = children(fresh.pid)
    os.kill(first, signal.SIGKILL)
    _wait_gone([fresh.pid, second])
    assert f"(pid {first}) exited" in fresh.log.read_text()


# -- sockets ---------------------------------------------------------------------


def test_without_reuse_port_the_workers_share_one_socket() -> None:
    socks = serving.listening_sockets("127.0.0.1", 0, 3, reuse_port=False)
    try:
        assert len(socks) == 1
    finally:
        for sock in socks:
            sock.close()


def test_a_port_another_server_shares_by_reuse_port_is_refused() -> None:
    (running,) = serving.listening_sockets("127.0.0.1", 0, 1, reuse_port=True)
    try:
        with pytest.raises(OSError, match="in use"):
            serving.listening_sockets("127.0.0.1", running.getsockname()[1], 2, reuse_port=True)
    finally:
        running.close()


def test_with_reuse_port_each_worker_gets_a_socket_on_the_same_port() -> None:
    socks = serving.listening_sockets("127.0.0.1", 0, 3, reuse_port=True)
    try:
        assert len({s.fileno() for s in socks}) == 3
        assert len({s.getsockname() for s in socks}) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in socks)
    finally:
        for sock in socks:
            sock.close()
