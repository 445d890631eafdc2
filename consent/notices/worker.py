"""The background work of notices: ending expired grants on time, and
pushing due notices.

:func:`run` makes one pass; :func:`start` runs passes every
``notice_interval_seconds`` in a thread of the server (the embedded
default) or of ``vrm worker`` (vrm/background.py). Attempts of one pass run
side by side, so a vendor whose endpoint hangs holds up only its own
notices, for no longer than ``notice_timeout_seconds``, and never a request
the server is answering.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from consent.grants import revocation
from consent.notices import delivery, outbox, secevent
from consent.notices.delivery import Outcome
from consent.notices.outbox import Claimed
from vrm.dbtypes import utcnow
from vrm.keys.service import Vault
from vrm.schedule import Every
from vrm.settings import Settings

# Notices claimed, and attempts made side by side, per pass.
BATCH = 32
SIDE_BY_SIDE = 8
# Grants that ran out this long before the last pass are looked at again,
# in case a clock or a slow transaction put one behind it.
EXPIRY_OVERLAP = timedelta(minutes=5)


def client(settings: Settings) -> httpx.Client:
    """The HTTP client of notices: short timeout, no redirects, no
    environment proxies or credentials (a notice goes only where the vendor
    registered)."""
    return httpx.Client(
        timeout=settings.notice_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=SIDE_BY_SIDE),
    )


class Notices:
    """One worker's passes (a server's, or one ``vrm worker``'s)."""

    def __init__(self, engine: Engine, vault: Vault, settings: Settings) -> None:
        self.engine = engine
        self.vault = vault
        self.settings = settings
        self.client = client(settings)
        self._pool = ThreadPoolExecutor(SIDE_BY_SIDE, thread_name_prefix="notice")
        self._expired_until: datetime | None = None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def expire(self) -> int:
        """Tombstone (and so notify) the grants that ran out: all of them at
        the first pass, then those since the last."""
        now = utcnow()
        since = None if self._expired_until is None else self._expired_until - EXPIRY_OVERLAP
        with Session(self.engine) as session:
            added = revocation.expire_due(session, self.vault, since=since)
        self._expired_until = now
        return added

    def push(self) -> int:
        """One batch of due notices, each tried once. How many were tried."""
        with Session(self.engine) as session:
            claimed = outbox.claim(session, self.vault, utcnow(), BATCH)
        if not claimed:
            return 0
        outcomes = list(self._pool.map(self._attempt, claimed))
        with Session(self.engine) as session:
            outbox.record(session, list(zip(claimed, outcomes, strict=True)), utcnow())
        return len(claimed)

    def _attempt(self, claimed: Claimed) -> Outcome:
        token = secevent.token(self.vault, self.settings.issuer, claimed.withdrawal, utcnow())
        return delivery.post(self.client, claimed.notify_uri, token)

    def run(self, stopping: threading.Event | None = None) -> int:
        """A pass: expiry, then batches until none is due (or stopping)."""
        self.expire()
        tried = 0
        while stopping is None or not stopping.is_set():
            done = self.push()
            tried += done
            if done < BATCH:
                break
        return tried


def start(engine: Engine, vault: Vault, settings: Settings) -> tuple[Every, Notices] | None:
    """Passes every ``notice_interval_seconds`` (None when that is 0)."""
    if not settings.notice_interval_seconds:
        return None
    notices = Notices(engine, vault, settings)
    every = Every(
        "notices",
        notices.run,
        interval=settings.notice_interval_seconds,
        first=settings.notice_interval_seconds,
    )
    every.start()
    return every, notices
