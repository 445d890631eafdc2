"""The server's background work, started in one place.

``vrm serve`` runs it in its own process by default (the embedded
default: one process does everything), and with ``--workers N`` in its
supervisor, once, not in each worker (vrm/serving.py). A deployment with
several servers sets ``VRM_BACKGROUND_JOBS=false`` in them and runs ``vrm
worker``, which runs exactly this and serves nothing
(docs/operations.md#background-work). Each
job runs on a timer in a thread of its own (vrm/schedule.py):

- the purge (vrm/purge.py), every ``purge_interval_seconds``;
- the audit log's checkpoints and cosignatures (consent/audit/tree.py),
  every ``audit_checkpoint_seconds``;
- expiry and revocation notices (consent/notices/worker.py), every
  ``notice_interval_seconds``.

Several workers may run at once: notices are claimed with ``FOR UPDATE
SKIP LOCKED`` on PostgreSQL, so none is pushed by two at a time.
"""

from __future__ import annotations

from sqlalchemy import Engine

from consent.audit import tree as audit_tree
from consent.notices import worker as notices
from vrm import purge
from vrm.crypto.keystore import KeyStore
from vrm.db import make_engine
from vrm.keys.service import Vault
from vrm.schedule import Every
from vrm.settings import Settings


class Background:
    """The running jobs; :meth:`stop` ends them and waits (and disposes of
    the engine they were given to own, if any)."""

    def __init__(
        self, jobs: list[Every], notices_: notices.Notices | None, owned: Engine | None = None
    ) -> None:
        self.jobs = jobs
        self.notices = notices_
        self.owned = owned

    def stop(self) -> None:
        for job in self.jobs:
            job.stop()
        if self.notices is not None:
            self.notices.close()
        if self.owned is not None:
            self.owned.dispose()


def start(engine: Engine, settings: Settings, keystore: KeyStore, vault: Vault) -> Background:
    jobs: list[Every] = []
    purging = purge.start(engine, settings)
    if purging is not None:
        jobs.append(purging)
    signing = audit_tree.start(engine, settings, keystore.server_key(audit_tree.KEY_NAME))
    if signing is not None:
        jobs.append(signing)
    pushing = notices.start(engine, vault, settings)
    if pushing is not None:
        jobs.append(pushing[0])
    return Background(jobs, pushing[1] if pushing is not None else None)


def start_apart(settings: Settings, keystore: KeyStore) -> Background:
    """The background work of a process that serves no requests of its own
    (``vrm worker``, the supervisor of ``vrm serve --workers N``), on an
    engine and a vault of its own; :meth:`Background.stop` disposes of the
    engine."""
    engine = make_engine(settings)
    try:
        running = start(
            engine, settings, keystore, Vault(keystore, cache_seconds=settings.key_cache_seconds)
        )
    except BaseException:
        engine.dispose()
        raise
    running.owned = engine
    return running
