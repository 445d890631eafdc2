"""``vrm serve``: one server process, or a supervisor and N of them.

With one worker, uvicorn serves in this process and the app's lifespan
runs the background work (vrm/background.py), as it always has.

With ``--workers N`` this process becomes a small supervisor:

- It binds N listening sockets to the one address, each with
  ``SO_REUSEPORT``, and starts N server processes (``python -m
  vrm.serving``), each handed a socket of its own. The kernel then spreads
  new connections evenly over the sockets, where one shared socket (what
  uvicorn's own ``--workers`` does) wakes whichever process accepts first,
  and a busy process can take more than its share. Linux refuses to add a
  socket of another user to the group, so no other account can listen in.
  Where ``SO_REUSEPORT`` is missing, the workers share one socket, and a
  warning says so.
- It runs the background work itself, once, and the servers run none
  (their ``VRM_BACKGROUND_JOBS`` is false): N servers each running it did
  the purge, the checkpoints and the notices N times. With
  ``VRM_BACKGROUND_JOBS=false`` (a ``vrm worker`` beside it) it runs none.
- SIGINT and SIGTERM stop every server (each finishes the requests it has
  in hand) and then the background work. If a server exits on its own,
  the supervisor stops the others and exits with an error, for the service
  manager to restart the whole; a server whose supervisor is gone stops too.

The servers share nothing in memory: every rule a request depends on (a
token, a grant, a session, a login throttle) is read from the database on
each request (docs/operations.md#throughput-and-workers).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TypedDict

import uvicorn

from vrm.crypto.keystore import KeyStore
from vrm.settings import Settings

logger = logging.getLogger(__name__)

# How long a server may take to finish its requests once asked to stop.
STOP_GRACE_SECONDS = 30.0
# How often the supervisor looks at its servers, and a server at its parent.
WATCH_SECONDS = 0.2


class _Options(TypedDict):
    proxy_headers: bool
    forwarded_allow_ips: list[str]
    log_level: str
    access_log: bool


def _options(settings: Settings) -> _Options:
    # X-Forwarded-For and -Proto only from the proxies the operator lists:
    # from anyone else they would let a client choose the address the login
    # throttle counts and the scheme that marks cookies Secure. uvicorn's
    # own default trusts 127.0.0.1 (and reads FORWARDED_ALLOW_IPS).
    proxies = settings.trusted_proxy_list
    return {
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies,
        "log_level": "info",
        "access_log": False,
    }


def serve(settings: Settings, keystore: KeyStore, host: str, port: int, workers: int) -> int:
    """Serve until stopped; the exit status. ``keystore`` is the key store
    with its server keys checked (vrm/keys/server.py), for the background
    work."""
    if workers <= 1:
        uvicorn.run("vrm.asgi:app", host=host, port=port, **_options(settings))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    return Supervisor(settings, keystore, host, port, workers).run()


# -- sockets -------------------------------------------------------------------


def reuse_port_available() -> bool:
    """Whether this platform lets several sockets listen on one port."""
    if not hasattr(socket, "SO_REUSEPORT"):
        return False
    with socket.socket() as probe:
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:
            return False
    return True


def _bind(host: str, port: int, reuse_port: bool, *, listen: bool = True) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
            sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def listening_sockets(host: str, port: int, count: int, *, reuse_port: bool) -> list[socket.socket]:
    """``count`` sockets listening on ``host:port``, one per server, or a
    single one for them all without ``reuse_port``. Port 0 picks one free
    port for every socket. A port in use fails, as without ``reuse_port``:
    a server still running there, started with ``SO_REUSEPORT`` by the same
    user, would otherwise quietly take a share of the connections."""
    if not reuse_port:
        return [_bind(host, port, reuse_port)]
    # Without SO_REUSEPORT, this bind fails if anything listens there.
    with _bind(host, port, False, listen=False) as probe:
        port = probe.getsockname()[1]
    socks: list[socket.socket] = []
    try:
        socks += [_bind(host, port, reuse_port) for _ in range(count)]
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


# -- the supervisor ------------------------------------------------------------


class Supervisor:
    """N server processes on one address, and the background work once."""

    def __init__(
        self, settings: Settings, keystore: KeyStore, host: str, port: int, workers: int
    ) -> None:
        self.settings = settings
        self.keystore = keystore
        self.host = host
        self.port = port
        self.workers = workers
        self.servers: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()

    def run(self) -> int:
        reuse_port = reuse_port_available()
        if not reuse_port:
            logger.warning(
                "SO_REUSEPORT is not available here: the %d workers share one listening"
                " socket, and connections may not spread evenly over them",
                self.workers,
            )
        socks = listening_sockets(self.host, self.port, self.workers, reuse_port=reuse_port)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self._stopping.set())
        try:
            for index in range(self.workers):
                self.servers.append(_start_server(socks[index % len(socks)], index))
        except BaseException:
            self._stop_servers()
            raise
        finally:
            # The servers hold their own copies: a server that dies takes
            # its socket with it, and nothing waits on it in vain.
            for sock in socks:
                sock.close()
        logger.info(
            "supervisor %d: %d workers (%s), pids %s",
            os.getpid(),
            self.workers,
            "a socket each, SO_REUSEPORT" if reuse_port else "one shared socket",
            " ".join(str(p.pid) for p in self.servers),
        )
        try:
            stop_jobs = self._start_jobs()
        except BaseException:
            self._stop_servers()
            raise
        try:
            failed = self._watch()
        finally:
            self._stop_servers()
            stop_jobs()
        return 1 if failed else 0

    def _start_jobs(self) -> Callable[[], None]:
        if not self.settings.background_jobs:
            return lambda: None
        from vrm import background

        jobs = background.start_apart(self.settings, self.keystore)
        logger.info("supervisor %d: running %d background jobs", os.getpid(), len(jobs.jobs))
        return jobs.stop

    def _watch(self) -> bool:
        """Wait for a signal (False) or a server's exit (True)."""
        while not self._stopping.wait(WATCH_SECONDS):
            for index, server in enumerate(self.servers):
                if server.poll() is not None:
                    logger.error(
                        "worker %d (pid %d) exited with status %s; stopping the others",
                        index,
                        server.pid,
                        server.returncode,
                    )
                    return True
        return False

    def _stop_servers(self) -> None:
        for server in self.servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for server in self.servers:
            try:
                server.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("worker pid %d did not stop in time; killing it", server.pid)
                server.kill()
                server.wait()


def _start_server(sock: socket.socket, index: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "VRM_BACKGROUND_JOBS": "false"}
    fd = sock.fileno()
    return subprocess.Popen(  # noqa: S603 - this interpreter, this module
        [sys.executable, "-m", "vrm.serving", "--fd", str(fd), "--index", str(index)],
        env=env,
        pass_fds=(fd,),
        stdin=subprocess.DEVNULL,
    )


# -- one server of the supervisor's ----------------------------------------------


def _watch_parent(server: uvicorn.Server, parent: int) -> None:
    """Stop ``server`` (a uvicorn Server) once its supervisor is gone."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS * 5)
    logger.warning("the supervisor (pid %d) is gone; stopping", parent)
    server.should_exit = True


def _server_main(fd: int) -> None:
    from vrm.app import create_app

    settings = Settings()
    sock = socket.socket(fileno=fd)
    server = uvicorn.Server(uvicorn.Config(create_app(settings), **_options(settings)))
    threading.Thread(
        target=_watch_parent, args=(server, os.getppid()), name="parent watch", daemon=True
    ).start()
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one server of `vrm serve --workers N`")
    parser.add_argument("--fd", type=int, required=True, help="the listening socket")
    parser.add_argument("--index", type=int, required=True, help="for ps: which worker")
    _server_main(parser.parse_args().fd)
