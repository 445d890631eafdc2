"""``vrm keys check``: which customers' root keys no longer open their data.

Each data key row is unwrapped with the key store, as a read would, so a
key that is missing, unreadable, or another customer's (whose unwrap fails
authentication) is found before a customer or a vendor meets it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from vrm.accounts.models import Customer
from vrm.crypto import aead
from vrm.crypto.keystore import KeyMissing, KeyStore, KeyUnreadable
from vrm.keys.models import DataKey
from vrm.keys.service import wrap_aad


@dataclass(frozen=True)
class CustomerKeyProblem:
    customer_id: str
    # missing | unreadable | wrong
    kind: str
    detail: str


def _problem(keystore: KeyStore, row: DataKey) -> CustomerKeyProblem | None:
    aad = wrap_aad(row.customer_id, row.category, row.version, row.root_version)
    try:
        keystore.unwrap(row.customer_id, row.root_version, row.wrapped, aad)
    except KeyUnreadable as exc:
        return CustomerKeyProblem(row.customer_id, "unreadable", str(exc))
    except KeyMissing as exc:
        return CustomerKeyProblem(row.customer_id, "missing", str(exc))
    except aead.SealError:
        detail = (
            f"root key {row.root_version} does not open the {row.category} data key "
            "(another customer's key, or an altered data key row)"
        )
        return CustomerKeyProblem(row.customer_id, "wrong", detail)
    return None


def customer_problems(*, session: Session, keystore: KeyStore) -> list[CustomerKeyProblem]:
    """The first key problem of each customer that has one, by customer id."""
    found: dict[str, CustomerKeyProblem] = {}
    keyed: set[str] = set()
    rows = session.exec(select(DataKey).order_by(col(DataKey.customer_id), col(DataKey.category)))
    for row in rows:
        keyed.add(row.customer_id)
        if row.customer_id not in found and (problem := _problem(keystore, row)) is not None:
            found[row.customer_id] = problem
    for customer_id in session.exec(select(Customer.id)):
        if customer_id not in keyed:
            found[customer_id] = CustomerKeyProblem(customer_id, "missing", "no data keys")
    return [found[c] for c in sorted(found)]
