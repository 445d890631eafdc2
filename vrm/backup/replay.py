"""Erase again, after a restore, everyone the erasure journal names.

Through the one erasure there is (vrm.accounts.service.erase): root keys
destroyed, rows deleted, vendors told and the change log scrubbed, exactly
as the first time. Vendors may hear of an erasure twice; revocation notices
are delivered at least once anyway (docs/operations.md).
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from vrm import hooks, migrate
from vrm.accounts.models import Customer
from vrm.accounts.service import erase
from vrm.crypto.keystore import FileKeyStore
from vrm.db import make_engine
from vrm.keys.service import Vault
from vrm.settings import Settings

# Ids per IN list, well under SQLite's limit on bound parameters.
_BATCH = 500


def erase_again(settings: Settings, erased: set[str]) -> int:
    """Erase every customer in ``erased`` the restored store still knows
    (by a row or by a root key); returns how many."""
    # A backup from an older release: erasure needs today's tables.
    migrate.upgrade(settings)
    store = FileKeyStore(settings.key_dir_resolved)
    vault = Vault(store, cache_seconds=0)
    engine = make_engine(settings)
    try:
        with Session(engine) as session:
            wanted, in_db = sorted(erased), set[str]()
            for start in range(0, len(wanted), _BATCH):
                batch = wanted[start : start + _BATCH]
                found = session.exec(select(Customer.id).where(col(Customer.id).in_(batch)))
                in_db.update(found)
            todo = sorted(in_db | {cid for cid in erased if _has_keys(store, cid)})
            for customer_id in todo:
                erase(
                    session=session,
                    vault=vault,
                    settings=settings,
                    customer_id=customer_id,
                    on_erase=hooks.ON_ERASE,
                )
    finally:
        engine.dispose()
    return len(todo)


def _has_keys(store: FileKeyStore, customer_id: str) -> bool:
    try:
        return bool(store.versions(customer_id))
    except ValueError:  # not a customer id the key store would accept
        return False
