"""Purging what the store keeps no longer than it needs.

:func:`purge` deletes, kind by kind, the rows past their retention period
(``VRM_RETAIN_*``; docs/operations.md, "Purging", says why each default).
Which rows are spent is each owner's rule, called here, not restated:
consent/oauth for tokens and codes, the login throttle for its counters,
the change log for its deletions and tombstones (vrm/feed/retention.py,
which also refuses cursors older than what was purged), the grants for
the tombstones they still read.

It runs in ``vrm serve`` on a timer (:func:`start`, from the app's
lifespan, or with several workers from their supervisor, vrm/serving.py),
or in ``vrm worker``, and once from ``vrm purge``, for cron or for a deployment
that runs it apart from its servers. Runs in several processes at once are
harmless: each batch re-checks its rows as it deletes them.

Rows go in batches of :data:`BATCH`, one short transaction each, with a
pause between (:data:`PAUSE_SECONDS`): on SQLite a transaction holds the one write lock, and the
vendor endpoints' group commit (vrm/storage/groupcommit.py) waits for it. A batch
picks its rows with a read (no lock) and deletes them by primary key,
re-checking the rule, so the lock is held only for the deletes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, and_, select, tuple_
from sqlmodel import Session, SQLModel, col, delete

from consent.grants import revocation
from consent.notices import outbox
from consent.oauth import store as oauth_store
from consent.oauth import tokens
from consent.oauth.models import AuthorizationCode, DeviceAuthorization, OAuthToken
from vrm.accounts import throttle
from vrm.accounts.models import LoginSession, LoginThrottle
from vrm.dbtypes import utcnow
from vrm.feed import retention
from vrm.feed.models import DataChange, FeedNotice
from vrm.history import deposits
from vrm.history.deposits import VendorDeposit
from vrm.schedule import Every
from vrm.settings import Settings
from vrm.vendor_api.models import AccessEvent

logger = logging.getLogger(__name__)

# Rows per transaction. A batch of 500 holds SQLite's write lock briefly,
# most of it the commit's fsync, which a smaller batch
# pays as well (docs/operations.md, "Purging", has the figures): the
# longest a vendor call waits behind one, and few commits for a backlog.
BATCH = 500
# The least wait between batches; each also waits as long as it took, so
# a backlog holds the write lock at most half the time.
PAUSE_SECONDS = 0.02
# The first run after a server starts: once start-up is done.
FIRST_RUN_SECONDS = 30.0

Rule = Callable[[Settings, datetime], ColumnElement[bool]]


def _ago(seconds: int, now: datetime) -> datetime:
    return now - timedelta(seconds=seconds)


@dataclass(frozen=True)
class Kind:
    name: str
    model: type[SQLModel]
    spent: Rule
    """The rows to delete at ``now``."""
    walk: Any = None
    """A unique column to walk the table by, for a table where the rows to
    keep sit among those to go: each batch reads on from where the last
    ended instead of from the start. None: the rule finds its rows (by an
    index, or the table is small)."""
    positions: bool = False
    """The rows are positions on the change log: their purge raises the
    feed's horizon (vrm/feed/retention.py)."""

    @property
    def table(self) -> Table:
        table = self.model.__table__  # type: ignore[attr-defined]
        assert isinstance(table, Table)  # noqa: S101 - every table model has one
        return table


KINDS = (
    Kind(
        "sessions",
        LoginSession,
        lambda s, now: col(LoginSession.expires_at) < _ago(s.retain_expired_sessions_seconds, now),
    ),
    Kind(
        "tokens",
        OAuthToken,
        lambda s, now: tokens.spent(_ago(s.retain_spent_tokens_seconds, now)),
        walk=col(OAuthToken.id),
    ),
    Kind(
        "codes",
        AuthorizationCode,
        lambda s, now: oauth_store.spent_codes(_ago(s.retain_spent_codes_seconds, now)),
    ),
    Kind(
        "device_codes",
        DeviceAuthorization,
        lambda s, now: oauth_store.spent_devices(_ago(s.retain_spent_codes_seconds, now)),
    ),
    Kind(
        "access_events",
        AccessEvent,
        lambda s, now: col(AccessEvent.at) < _ago(s.retain_access_events_seconds, now),
    ),
    Kind(
        "feed_deletions",
        DataChange,
        lambda s, now: retention.deletions(_ago(s.retain_feed_deletions_seconds, now)),
        walk=col(DataChange.seq),
        positions=True,
    ),
    Kind(
        "tombstones",
        FeedNotice,
        lambda s, now: and_(
            retention.tombstones(_ago(s.retain_feed_deletions_seconds, now)),
            ~revocation.tombstones_in_use(),
            ~outbox.undelivered(),
        ),
        walk=col(FeedNotice.seq),
        positions=True,
    ),
    Kind("login_throttle", LoginThrottle, throttle.forgotten),
    Kind(
        "deposits",
        VendorDeposit,
        lambda s, now: deposits.spent(_ago(s.retain_deposits_seconds, now)),
    ),
)


def purge(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    batch: int = BATCH,
    pause: float = PAUSE_SECONDS,
    stopping: threading.Event | None = None,
) -> dict[str, int]:
    """Delete every row past its retention at ``now``; how many of each
    kind. Once ``stopping`` is set, each kind stops after one batch."""
    removed: dict[str, int] = {}
    for kind in KINDS:
        removed[kind.name] = _purge(engine, kind, kind.spent(settings, now), batch, pause, stopping)
    return removed


def _purge(
    engine: Engine,
    kind: Kind,
    spent: ColumnElement[bool],
    batch: int,
    pause: float,
    stopping: threading.Event | None,
) -> int:
    table = kind.table
    keys = list(table.primary_key.columns)
    walk = kind.walk if kind.walk is not None else keys[0]
    removed = 0
    after: Any = None
    while True:
        began = time.monotonic()
        with Session(engine) as session:
            query = select(*keys, walk).where(spent)
            if kind.walk is not None:
                if after is not None:
                    query = query.where(walk > after)
                query = query.order_by(walk)
            rows = session.execute(query.limit(batch)).all()
            if not rows:
                break
            if len(keys) == 1:
                these = keys[0].in_([row[0] for row in rows])
            else:
                these = tuple_(*keys).in_([tuple(row[: len(keys)]) for row in rows])
            # The rule again: a row may have changed since it was read.
            deleted = session.exec(delete(table).where(these, spent)).rowcount
            if kind.positions and deleted:
                retention.raise_horizon(session, max(row[-1] for row in rows))
            session.commit()
        removed += deleted
        after = rows[-1][-1]
        if len(rows) < batch or (kind.walk is None and not deleted):
            break
        if stopping is not None and stopping.is_set():
            break
        if pause:
            time.sleep(max(pause, time.monotonic() - began))
    return removed


def start(engine: Engine, settings: Settings) -> Every | None:
    """The purge on a timer, first :data:`FIRST_RUN_SECONDS` after this,
    then every ``purge_interval_seconds`` (None when that is 0: the
    operator runs ``vrm purge`` instead)."""
    if not settings.purge_interval_seconds:
        return None

    def run(stopping: threading.Event) -> None:
        removed = purge(engine, settings, utcnow(), stopping=stopping)
        if any(removed.values()):
            logger.info("purged %s", ", ".join(f"{n} {kind}" for kind, n in removed.items()))

    every = Every("purge", run, interval=settings.purge_interval_seconds, first=FIRST_RUN_SECONDS)
    every.start()
    return every
