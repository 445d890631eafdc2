"""``vrm keys check``: which customers' root keys no longer open their data.

Each data key row a root key in the key store wraps is unwrapped with the
key store, as a read would, so a key that is missing, unreadable, or
another customer's (whose unwrap fails authentication) is found before a
customer or a vendor meets it. A customer-held root key (vrm/keys/custody.py)
is the customer's: the server cannot unwrap what it wraps, so only counts
those customers, and how many it still holds the keys of (they move over
at their next log-in when ``key_custody`` is "customer").

Each grant's escrowed copies (``key_escrow``) are opened with its escrow
key as a vendor's read would, so a lost or damaged escrow key, or an
altered copy, is found too; the grant is named, not its customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from vrm.accounts.models import Customer
from vrm.crypto import aead
from vrm.crypto.keystore import KeyMissing, KeyStore, KeyUnreadable
from vrm.keys.custody import CUSTOMER_ROOT
from vrm.keys.models import DataKey, KeyEscrow
from vrm.keys.service import escrow_aad, wrap_aad


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


@dataclass(frozen=True)
class CustomerKeys:
    # The first key problem of each customer that has one, by customer id.
    problems: list[CustomerKeyProblem]
    # Customers whose own root key wraps every data key of theirs.
    customer_held: int
    # Customers with a data key a root key in the key store wraps.
    server_held: int


def customer_keys(*, session: Session, keystore: KeyStore) -> CustomerKeys:
    found: dict[str, CustomerKeyProblem] = {}
    # Customer id -> whether the key store wraps any data key of theirs.
    by_server: dict[str, bool] = {}
    rows = session.exec(select(DataKey).order_by(col(DataKey.customer_id), col(DataKey.category)))
    for row in rows:
        server_held = row.root_version != CUSTOMER_ROOT
        by_server[row.customer_id] = by_server.get(row.customer_id, False) or server_held
        if (
            server_held
            and row.customer_id not in found
            and (problem := _problem(keystore, row)) is not None
        ):
            found[row.customer_id] = problem
    for customer_id in session.exec(select(Customer.id)):
        if customer_id not in by_server:
            found[customer_id] = CustomerKeyProblem(customer_id, "missing", "no data keys")
    server = sum(by_server.values())
    return CustomerKeys([found[c] for c in sorted(found)], len(by_server) - server, server)


@dataclass(frozen=True)
class EscrowKeyProblem:
    grant_id: str
    # missing | unreadable | damaged
    kind: str
    detail: str


def _escrow_problem(keystore: KeyStore, row: KeyEscrow) -> EscrowKeyProblem | None:
    aad = escrow_aad(row.holder_id, row.customer_id, row.category, row.version)
    try:
        keystore.escrow_unwrap(row.holder_id, row.escrow_version, row.wrapped, aad)
    except KeyUnreadable as exc:
        return EscrowKeyProblem(row.holder_id, "unreadable", str(exc))
    except KeyMissing as exc:
        return EscrowKeyProblem(row.holder_id, "missing", str(exc))
    except aead.SealError:
        detail = (
            f"escrow key {row.escrow_version} does not open its copy of the {row.category} "
            "data key (a damaged key file, or an altered key_escrow row)"
        )
        return EscrowKeyProblem(row.holder_id, "damaged", detail)
    return None


def escrow_keys(*, session: Session, keystore: KeyStore) -> list[EscrowKeyProblem]:
    """The first problem of each grant whose escrowed copies do not all
    open: its vendor cannot read what it lacks while its customer is away."""
    found: dict[str, EscrowKeyProblem] = {}
    rows = session.exec(
        select(KeyEscrow).order_by(col(KeyEscrow.holder_id), col(KeyEscrow.category))
    )
    for row in rows:
        if row.holder_id not in found and (problem := _escrow_problem(keystore, row)):
            found[row.holder_id] = problem
    return list(found.values())
