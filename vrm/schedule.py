"""Background work on a timer, in a thread of its own.

The server's background jobs (for now the purge, vrm/purge.py) run here,
off the event loop: a job may take seconds and holds database connections
meanwhile. A job that fails is logged at warning (the exception's class, never
its text) and runs again at its next turn; nothing it raises stops the
thread or the server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Every:
    """Runs ``job`` ``first`` seconds after :meth:`start`, then every
    ``interval`` seconds after each run ends, until :meth:`stop`.

    ``job`` is given the stop event, to end a long run early when the
    server stops."""

    def __init__(
        self,
        name: str,
        job: Callable[[threading.Event], object],
        *,
        interval: float,
        first: float,
    ) -> None:
        self.name = name
        self.job = job
        self.interval = interval
        self.first = first
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._thread.join()

    def _run(self) -> None:
        wait = self.first
        while not self.stopping.wait(wait):
            wait = self.interval
            try:
                self.job(self.stopping)
            except Exception as exc:
                # The class only: a database error's text carries the
                # statement's parameters (ids, keyed hashes).
                logger.warning(
                    "%s failed (%s); it runs again in %s s",
                    self.name,
                    type(exc).__name__,
                    self.interval,
                )
