"""What the layers above the store register with it at start-up.

The store (vrm.accounts, vrm.export) knows nothing of consent or the vendor
API (docs/architecture.md); where it must tell them something, they hand it
a hook. Every path that erases an account takes :data:`ON_ERASE`: the app
(vrm/app.py), `vrm customers erase` (vrm/cli.py) and a restore's replay
(vrm/backup/replay.py).
"""

from __future__ import annotations

from sqlmodel import Session

from consent.audit import events as audit
from consent.grants import revocation
from consent.grants import service as grants
from vrm.accounts.service import OnErase, OnKeysMoved
from vrm.keys.service import OnRewrap, Vault

# The erasure and the end of each grant go on the audit log (while the
# customer's salt exists); vendors holding the customer's data get a
# tombstone on their feed.
ON_ERASE: tuple[OnErase, ...] = (audit.on_account_erased, revocation.on_account_erased)

# Each customer's rewrap under a new root key (vrm keys rotate) goes on the
# audit log, in the rewrap's transaction.
ON_REWRAP: OnRewrap = audit.key_rotated


def _keys_moved(session: Session, vault: Vault, customer_id: str, moved: bool) -> None:
    grants.escrow_live_grants(session, vault, customer_id)
    if moved:
        audit.key_moved_to_customer(session, customer_id)


# A customer whose root key moves to them at log-in (key_custody
# "customer"), or whose documents are sealed again field by field there:
# each live grant escrows what it reads, and a move goes on the audit log,
# in the change's transaction. Every log-in path takes it
# (vrm/accounts/routes.py).
ON_KEYS_MOVED: OnKeysMoved = _keys_moved
