"""Feed throughput: one vendor syncing many customers through GET /v1/feed.

    python bench/feed.py [--customers 100000] [--events 2] [--page 1000]
                         [--changed 0.1] [--seed-procs 2] [--sqlite]

Starts a private PostgreSQL cluster (tests/pgserver.py; ``--sqlite`` for the
embedded default), runs ``vrm init`` and ``vrm vendors add``, and seeds
``--customers`` customers (sign-up, profile and preferences, ``--events``
history events each, and a grant to the vendor for ``profile.email:read
preferences:read history:read``), in ``--seed-procs`` processes, in bulk
(see _seed). Seeding is not measured.

Then uvicorn serves the app and one keep-alive client, holding a
client-credentials token with ``feed:read``, reads the feed from the start
to the end in pages of ``--page`` items, as a vendor's first sync would:
one snapshot per customer (decrypting each customer's records, recording
one access event each). Then ``--changed`` of the customers each change
their email and add an event, and the client syncs again from its cursor.
Prints items per second, customers per second and page latency (p50, p99)
for both syncs.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as ``python bench/feed.py``, this file's folder is sys.path[0], where
# bench/token.py would shadow the standard library's ``token`` module.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT))

SCOPES = "profile.email:read preferences:read history:read"
PASSWORD = "benchmark passphrase 1"  # noqa: S105 - throwaway bench customers
FAST_HASH = {
    "VRM_ARGON2_TIME_COST": "1",
    "VRM_ARGON2_MEMORY_KIB": "1024",
    "VRM_ARGON2_PARALLELISM": "1",
}


def _env(data: Path, database_url: str, base: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env.update(VRM_DATA_DIR=str(data), VRM_ISSUER=base, **FAST_HASH)
    if database_url:
        env["VRM_DATABASE_URL"] = database_url
    return env


def _seed(job: tuple[dict[str, str], str, int, int, int, bool]) -> int:
    """Seed customers [start, start + count) in this process, in batches.

    A hundred thousand sign-ups through the services would take an hour
    here (SQLAlchemy's per-object overhead, about 60 ms a customer), so
    this writes the same rows the services write (sealed with the product's
    vault, keys in the product's key store, change-log positions from the
    product's clock) in bulk: one transaction per batch. It mirrors
    accounts.sign_up, records.replace_document, history.insert_event and
    grants.create; tests/vendor_api cover those paths themselves."""
    env, vendor_id, start, count, events, fast_commits = job
    os.environ.update(env)
    import secrets
    import uuid

    from sqlalchemy import text
    from sqlmodel import Session

    import vrm.models  # noqa: F401 - every table, for the foreign keys
    from consent.grants.models import Grant, GrantChange
    from consent.scopes import parse_scopes
    from vrm.accounts.models import Customer
    from vrm.accounts.passwords import Passwords
    from vrm.accounts.service import _email_key
    from vrm.catalogue import ACCOUNT
    from vrm.catalogue.history import HistoryEvent
    from vrm.catalogue.preferences import Preferences
    from vrm.catalogue.profile import Profile
    from vrm.crypto.keystore import FileKeyStore
    from vrm.db import make_engine
    from vrm.feed.models import DataChange, FeedNotice
    from vrm.history.models import HistoryRecord, StoredEvent
    from vrm.keys.service import Vault
    from vrm.records.models import DocumentRecord
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
                    sealed = vault.seal(
                        session,
                        customer_id=cid,
                        category=category,
                        record_id=category,
                        plaintext=doc.model_dump_json(exclude_none=True).encode(),
                    )
                    rows.append(
                        DocumentRecord(
                            customer_id=cid,
                            category=category,
                            key_version=sealed.key_version,
                            ciphertext=sealed.ciphertext,
                            revision=1,
                            updated_at=now,
                        )
                    )
                    seq += 1
                    rows.append(_change_row(DataChange, cid, category, category, seq, now))
                for k in range(events):
                    event_id = uuid.uuid4().hex
                    event = HistoryEvent(
                        vendor="Bench Books",
                        type="purchase",
                        occurred_at=now - timedelta(days=rng.randint(1, 900)),
                        items=[{"name": f"Book {k}", "amount": "12.90"}],
                        amount="12.90",
                        currency="EUR",
                        channel="online",
                    )
                    stored = StoredEvent(**event.model_dump(), source="customer")
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


def _change(job: tuple[dict[str, str], list[int]]) -> int:
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


def _sync(base: str, token: str, cursor: str | None, page: int) -> dict[str, Any]:
    items = 0
    kinds: dict[str, int] = {}
    subjects: set[str] = set()
    latencies: list[float] = []
    body_bytes = 0
    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=300) as client:
        while True:
            params: dict[str, Any] = {"limit": page}
            if cursor is not None:
                params["cursor"] = cursor
            t0 = time.perf_counter()
            r = client.get("/v1/feed", params=params, headers={"Authorization": f"Bearer {token}"})
            latencies.append(time.perf_counter() - t0)
            r.raise_for_status()
            body_bytes += len(r.content)
            data = r.json()
            for item in data["items"]:
                kinds[item["type"]] = kinds.get(item["type"], 0) + 1
                subjects.add(item["subject"])
            items += len(data["items"])
            cursor = data["next_cursor"]
            if not data["has_more"]:
                break
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "items": items,
        "kinds": kinds,
        "subjects": len(subjects),
        "pages": len(latencies),
        "seconds": elapsed,
        "items_per_s": items / elapsed if elapsed else 0.0,
        "subjects_per_s": len(subjects) / elapsed if elapsed else 0.0,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "mb": body_bytes / 1e6,
        "cursor": cursor,
    }


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            "vrm.asgi:app",
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--no-access-log", "--log-level", "warning"),
        ],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text()[-2000:])
        time.sleep(0.3)


def _print(label: str, s: dict[str, Any]) -> None:
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s["kinds"].items()))
    print(
        f"{label:<14} {s['items']:>8} items ({kinds}) for {s['subjects']} customers in "
        f"{s['seconds']:.1f} s, {s['pages']} pages: {s['items_per_s']:.0f} items/s, "
        f"{s['subjects_per_s']:.0f} customers/s, page p50 {s['p50_ms']:.0f} ms, "
        f"p99 {s['p99_ms']:.0f} ms, {s['mb']:.1f} MB"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2, help="history events per customer")
    parser.add_argument("--page", type=int, default=1000, help="feed page size")
    parser.add_argument("--changed", type=float, default=0.1, help="share changed after sync")
    parser.add_argument("--seed-procs", type=int, default=2)
    parser.add_argument("--sqlite", action="store_true", help="the embedded default instead")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    run(parser.parse_args())


def run(args: argparse.Namespace) -> None:
    """The whole benchmark (also bench/data_api.py's ``feed`` phase)."""
    from tests.pgserver import postgres_cluster
    from vrm.settings import Settings  # noqa: F401 - fail early if not installed

    with contextlib.ExitStack() as stack:
        database_url = "" if args.sqlite else stack.enter_context(postgres_cluster())
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="vrm-bench-feed-")))
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        env = _env(data, database_url, base)
        quiet: dict[str, Any] = {"env": env, "check": True, "capture_output": True, "text": True}
        subprocess.run([str(BIN / "vrm"), "init"], **quiet)
        added = subprocess.run(
            [
                str(BIN / "vrm"),
                "vendors",
                "add",
                "--name",
                "Bench",
                "--redirect-uri",
                "https://vendor.example/cb",
                "--json",
            ],
            **quiet,
        )
        vendor = json.loads(added.stdout)

        t0 = time.perf_counter()
        procs = max(1, args.seed_procs)
        share = -(-args.customers // procs)
        jobs = [
            (
                env,
                vendor["client_id"],
                i * share,
                min(share, args.customers - i * share),
                args.events,
                not args.sqlite,
            )
            for i in range(procs)
            if i * share < args.customers
        ]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(len(jobs)) as pool:
            seeded = sum(pool.map(_seed, jobs))
        print(
            f"seeded {seeded} customers ({args.events} events each) in "
            f"{time.perf_counter() - t0:.0f} s on {'SQLite' if args.sqlite else 'PostgreSQL'}"
        )

        server = _serve(env, port, data / "server.log")
        stack.callback(lambda: (server.terminate(), server.wait(timeout=30)))
        r = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials", "scope": "feed:read"},
            auth=(vendor["client_id"], vendor["client_secret"]),
        )
        r.raise_for_status()
        token = r.json()["access_token"]
        first = _sync(base, token, None, args.page)
        _print("first sync", first)

        changed = random.Random(7).sample(range(seeded), int(seeded * args.changed))
        with ctx.Pool(len(jobs)) as pool:
            pool.map(_change, [(env, changed[i::procs]) for i in range(procs)])
        again = _sync(base, token, first["cursor"], args.page)
        _print("incremental", again)


if __name__ == "__main__":
    main()
