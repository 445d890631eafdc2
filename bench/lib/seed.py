"""Customers written in bulk, as the services would write them (bench/feed.py).

A hundred thousand sign-ups through the services would take an hour here
(SQLAlchemy's per-object overhead, about 60 ms a customer), so :func:`seed`
writes the same rows the services write (sealed with the product's vault,
keys in the product's key store, change-log positions from the product's
clock) in bulk, one transaction per batch. Each function runs in a process
of its own (a spawned pool), configured by the ``VRM_`` environment it is
given.

Seeded customers are server-held, whatever ``VRM_KEY_CUSTODY`` says:
customers from before, as if not yet moved (docs/keys.md, "Moving over").
The rows written here mirror a server-held sign-up (a root key in the key
store, a plain Argon2id password hash) and a grant without escrow; a
customer-held seed would have to copy sign-up's password wrapping and each
grant's escrow too, a second copy of those services. So the feed benchmark
measures vendors reading through the key store's root keys, not through
grants' escrows.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.lib import people

SCOPES = "profile.email:read preferences:read history:read"
PASSWORD = "benchmark passphrase 1"  # noqa: S105 - throwaway bench customers
# Argon2id at test cost: the measured server never hashes a password.
FAST_HASH = {
    "VRM_ARGON2_TIME_COST": "1",
    "VRM_ARGON2_MEMORY_KIB": "1024",
    "VRM_ARGON2_PARALLELISM": "1",
}


def seed_in_processes(
    env: dict[str, str], vendor_id: str, customers: int, events: int, procs: int, postgres: bool
) -> int:
    """:func:`seed` ``customers`` customers in ``procs`` spawned processes;
    how many were seeded. Then, on PostgreSQL, ``ANALYZE``: autovacuum
    would within a minute of a bulk load, and without it the planner's
    estimates of the fresh tables were off by hundreds of times (the feed's
    page query took 2-3 s instead of milliseconds: docs/performance.md)."""
    import multiprocessing

    procs = max(1, procs)
    share = -(-customers // procs)
    jobs = [
        (env, vendor_id, i * share, min(share, customers - i * share), events, postgres)
        for i in range(procs)
        if i * share < customers
    ]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        seeded = sum(pool.map(seed, jobs))
    if postgres:
        import psycopg

        url = env["VRM_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    return seeded


def change_in_processes(env: dict[str, str], changed: list[int], procs: int) -> None:
    """:func:`change` those customers, in ``procs`` spawned processes."""
    import multiprocessing

    procs = max(1, procs)
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        pool.map(change, [(env, changed[i::procs]) for i in range(procs)])


def seed(job: tuple[dict[str, str], str, int, int, int, bool]) -> int:
    """Seed customers [start, start + count) in this process, in batches.

    It mirrors accounts.sign_up, records.replace_document,
    history.insert_event and grants.create; tests/vendor_api cover those
    paths themselves."""
    env, vendor_id, start, count, events, fast_commits = job
    os.environ.update(env)
    import secrets
    import uuid

    from sqlalchemy import text
    from sqlmodel import Session

    import vrm.models  # noqa: F401 - every table, for the foreign keys
    from consent.grants.models import Grant, GrantChange
    from consent.policy import parse_scopes
    from vrm.accounts.models import Customer
    from vrm.accounts.passwords import Passwords
    from vrm.accounts.service import _email_key
    from vrm.catalogue import ACCOUNT
    from vrm.catalogue.history import HistoryEvent, kept_private
    from vrm.catalogue.preferences import Preferences
    from vrm.catalogue.profile import Profile
    from vrm.crypto.keystore import FileKeyStore
    from vrm.db import make_engine
    from vrm.feed.models import DataChange, FeedNotice
    from vrm.history.models import HistoryRecord, StoredEvent
    from vrm.keys.service import Vault
    from vrm.records.models import DocumentRecord
    from vrm.records.service import seal_document
    from vrm.settings import Settings

    settings = Settings()
    engine = make_engine(settings)
    vault = Vault(FileKeyStore(settings.key_dir_resolved))
    password_hash = Passwords(settings).hash(PASSWORD)
    accesses, _ = parse_scopes(SCOPES)
    rng = random.Random(start)
    batch = 500
    for first in range(start, start + count, batch):
        numbers = range(first, min(first + batch, start + count))
        now = datetime.now(UTC)
        with Session(engine) as session:
            if fast_commits:
                # Seeding only: the measured server keeps the defaults.
                session.execute(text("SET synchronous_commit TO off"))
            per_customer = 3 + events  # two documents, the events, the grant
            last = session.execute(
                text("UPDATE feed_clock SET seq = seq + :n WHERE id = 1 RETURNING seq"),
                {"n": per_customer * len(numbers)},
            ).scalar_one()
            seq = last - per_customer * len(numbers)
            customers: list[Any] = []
            rows: list[Any] = []
            later: list[Any] = []
            for n in numbers:
                cid = uuid.uuid4().hex
                vault.create_customer_keys(session, cid)
                email = f"c{n}@bench.example"
                sealed = vault.seal(
                    session,
                    customer_id=cid,
                    category=ACCOUNT,
                    record_id=cid,
                    plaintext=email.encode(),
                )
                customers.append(
                    Customer(
                        id=cid,
                        email_index=_email_key(vault, email),
                        email_ct=sealed.ciphertext,
                        key_version=sealed.key_version,
                        password_hash=password_hash,
                        created_at=now,
                        password_changed_at=now,
                    )
                )
                documents = {
                    "profile": Profile(
                        given_name=f"Given{n}",
                        family_name=f"Family{n}",
                        email=f"contact{n}@bench.example",
                        phone=f"+351 91{n:07d}",
                        language="pt-PT",
                    ),
                    "preferences": Preferences(
                        dietary=["vegetarian"],
                        accessibility=["large print"],
                        free={"team": f"t{n % 50}"},
                    ),
                }
                for category, doc in documents.items():
                    key_version, ciphertext = seal_document(
                        session,
                        vault,
                        cid,
                        category,
                        doc.model_dump_json(exclude_none=True).encode(),
                    )
                    rows.append(
                        DocumentRecord(
                            customer_id=cid,
                            category=category,
                            key_version=key_version,
                            ciphertext=ciphertext,
                            revision=1,
                            updated_at=now,
                        )
                    )
                    seq += 1
                    rows.append(_change_row(DataChange, cid, category, category, seq, now))
                for _ in range(events):
                    event_id = uuid.uuid4().hex
                    # About 500 bytes: items, amounts, notes, a label now and then.
                    event = HistoryEvent.model_validate(people.event(rng))
                    stored = StoredEvent(
                        **event.model_dump(),
                        source="customer",
                        shared=not kept_private(event.labels),
                    )
                    sealed = vault.seal(
                        session,
                        customer_id=cid,
                        category="history",
                        record_id=event_id,
                        plaintext=stored.model_dump_json(exclude_none=True).encode(),
                    )
                    rows.append(
                        HistoryRecord(
                            id=event_id,
                            customer_id=cid,
                            key_version=sealed.key_version,
                            ciphertext=sealed.ciphertext,
                            revision=1,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    seq += 1
                    rows.append(_change_row(DataChange, cid, "history", event_id, seq, now))
                seq += 1
                grant = Grant(
                    id=secrets.token_hex(16),
                    customer_id=cid,
                    vendor_id=vendor_id,
                    scopes=[a.scope for a in accesses],
                    openid=False,
                    purpose="dpv:ServiceProvision",
                    created_at=now,
                    updated_at=now,
                    expires_at=now + timedelta(days=365),
                    feed_seq=seq,
                )
                rows.append(grant)
                later.append(
                    GrantChange(
                        grant_id=grant.id,
                        at=now,
                        kind="granted",
                        by="customer",
                        detail={"granted": grant.scopes, "purpose": grant.purpose},
                    )
                )
                later.append(
                    FeedNotice(
                        seq=seq,
                        vendor_id=vendor_id,
                        grant_id=grant.id,
                        customer_id=cid,
                        kind="started",
                        at=now,
                    )
                )
            # Parents first: without relationships the unit of work does not
            # order inserts by foreign key. The data keys are already in the
            # session (create_customer_keys); hold them back until then.
            keys = [o for o in session.new if not isinstance(o, Customer)]
            for o in keys:
                session.expunge(o)
            for group in (customers, keys + rows, later):
                session.add_all(group)
                session.flush()
            session.commit()
    engine.dispose()
    return count


def _change_row(model: Any, cid: str, category: str, record_id: str, seq: int, now: Any) -> Any:
    return model(customer_id=cid, category=category, record_id=record_id, seq=seq, op="put", at=now)


def change(job: tuple[dict[str, str], list[int]]) -> int:
    """Customers ``ns`` each change their email and add an event."""
    env, ns = job
    os.environ.update(env)
    from sqlmodel import Session, select

    import vrm.models  # noqa: F401 - every table, for the foreign keys
    from vrm.accounts.models import Customer
    from vrm.catalogue.history import HistoryEvent
    from vrm.crypto.keystore import FileKeyStore
    from vrm.db import make_engine
    from vrm.history import service as history
    from vrm.keys.service import Vault
    from vrm.records import service as records
    from vrm.settings import Settings

    settings = Settings()
    engine = make_engine(settings)
    vault = Vault(FileKeyStore(settings.key_dir_resolved))
    with Session(engine) as session:
        ids = list(session.exec(select(Customer.id).order_by(Customer.created_at)).all())
    for n in ns:
        with Session(engine) as session:
            records.patch_document(
                session=session,
                vault=vault,
                customer_id=ids[n],
                category="profile",
                patch={"email": f"changed{n}@bench.example"},
                if_match=None,
            )
            history.add_event(
                session=session,
                vault=vault,
                customer_id=ids[n],
                event=HistoryEvent(
                    vendor="Bench Books",
                    type="return",
                    occurred_at=datetime.now(UTC),
                ),
                source="customer",
            )
    engine.dispose()
    return len(ns)
