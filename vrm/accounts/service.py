"""Account use cases. Keyword-only, session first, no HTTP in here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vrm.accounts import sessions, throttle
from vrm.accounts.models import Customer, LoginSession, LoginThrottle
from vrm.accounts.passwords import Passwords
from vrm.backup.journal import ErasureJournal
from vrm.catalogue import ACCOUNT
from vrm.db import scrub_wal
from vrm.dbtypes import utcnow
from vrm.errors import Conflict, Forbidden, Unauthenticated
from vrm.feed import changes as feed
from vrm.history.models import HistoryRecord
from vrm.keys.models import DataKey
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.records.models import DocumentRecord
from vrm.settings import Settings

WRONG_CREDENTIALS = "Email or password is wrong."

# What a layer above the store does when an account is erased (consent
# tells the vendors holding the customer's data). It is called with the
# erasure's session and the customer id before anything is destroyed, and
# returns what to write once the rows are gone: change-log writes come last
# (vrm/feed/changes.py). The composition passes them in (vrm/hooks.py).
OnErase = Callable[[Session, str], Callable[[], None]]


def _email_key(vault: Vault, email: str) -> bytes:
    return vault.blind_index("email", email)


def _address_key(vault: Vault, address: str) -> bytes:
    return vault.blind_index("client-address", address)


def _throttle_prefix(vault: Vault, email_key: bytes) -> bytes:
    return vault.blind_index("throttled-account", email_key.hex())


def sign_up(
    *, session: Session, vault: Vault, passwords: Passwords, email: str, password: str
) -> Customer:
    index = _email_key(vault, email)
    if session.exec(select(Customer.id).where(col(Customer.email_index) == index)).first():
        raise Conflict("An account with this email already exists.")
    now = utcnow()
    customer = Customer(
        id=uuid.uuid4().hex,
        email_index=index,
        email_ct=b"",
        key_version=0,
        password_hash=passwords.hash(password),
        created_at=now,
        password_changed_at=now,
    )
    try:
        session.add(customer)
        session.flush()
        vault.create_customer_keys(session, customer.id)
        sealed = vault.seal(
            session,
            customer_id=customer.id,
            category=ACCOUNT,
            record_id=customer.id,
            plaintext=email.encode(),
        )
        customer.email_ct, customer.key_version = sealed.ciphertext, sealed.key_version
        records.create_empty_documents(session=session, vault=vault, customer_id=customer.id)
        session.commit()
    except IntegrityError:
        session.rollback()
        vault.shred(customer.id)
        raise Conflict("An account with this email already exists.") from None
    except BaseException:
        session.rollback()
        vault.shred(customer.id)
        raise
    session.refresh(customer)
    return customer


def account_email(*, session: Session, vault: Vault, customer: Customer) -> str:
    return vault.open(
        session.connection(),
        customer_id=customer.id,
        category=ACCOUNT,
        record_id=customer.id,
        key_version=customer.key_version,
        ciphertext=customer.email_ct,
    ).decode()


def log_in(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    email: str,
    password: str,
    client_address: str,
    device: str,
) -> tuple[Customer, str]:
    """Check the credentials and open a session on ``device``; returns the
    raw token.

    Unknown email and wrong password take the same path, the same time and
    give the same error; both count towards the throttles.
    """
    now = utcnow()
    account_key = _email_key(vault, email)
    # By address, and by account at that address; never by account alone,
    # which would let anyone lock the owner out (docs/threat-model.md).
    at_address = throttle.Counter(
        _address_key(vault, client_address), settings.login_max_failures_per_address
    )
    account_at_address = throttle.Counter(
        throttle.account_key(
            _throttle_prefix(vault, account_key),
            vault.blind_index("account-at-address", f"{account_key.hex()} {client_address}"),
        ),
        settings.login_max_failures,
    )
    throttle.reserve(session, counters=[at_address, account_at_address], settings=settings, now=now)
    customer = session.exec(
        select(Customer).where(col(Customer.email_index) == account_key)
    ).first()
    ok = passwords.verify(customer.password_hash if customer else None, password)
    if not ok or customer is None:
        raise Unauthenticated(WRONG_CREDENTIALS)
    throttle.succeed(session, hand_back=[at_address], forget=[account_at_address.key])
    sessions.forget_expired(session=session, customer_id=customer.id)
    if passwords.needs_rehash(customer.password_hash):
        customer.password_hash = passwords.hash(password)
        session.add(customer)
    token = sessions.open_session(
        session=session, vault=vault, settings=settings, customer_id=customer.id, device=device
    )
    session.commit()
    return customer, token


def _confirm_password(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    customer: Customer,
    password: str,
    now: datetime,
) -> None:
    # Re-entering a password is throttled like a log-in: a stolen session
    # must not become a password oracle.
    key = _confirm_key(customer.id)
    throttle.reserve(
        session,
        counters=[throttle.Counter(key, settings.login_max_failures)],
        settings=settings,
        now=now,
    )
    if not passwords.verify(customer.password_hash, password):
        raise Forbidden("The password is wrong.")
    throttle.succeed(session, forget=[key])


def change_password(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    customer: Customer,
    current_password: str,
    new_password: str,
    device: str,
) -> str:
    """Change the password, end every session, and open a fresh one for the
    caller on ``device`` (returns its token)."""
    now = utcnow()
    _confirm_password(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        customer=customer,
        password=current_password,
        now=now,
    )
    customer.password_hash = passwords.hash(new_password)
    customer.password_changed_at = now
    session.add(customer)
    sessions.end_all(session=session, customer_id=customer.id)
    token = sessions.open_session(
        session=session, vault=vault, settings=settings, customer_id=customer.id, device=device
    )
    session.commit()
    return token


def delete_account(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    customer: Customer,
    password: str,
    on_erase: Sequence[OnErase],
) -> None:
    """Erase the customer: root keys first (crypto-shredding), then rows."""
    _confirm_password(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        customer=customer,
        password=password,
        now=utcnow(),
    )
    erase(
        session=session,
        vault=vault,
        settings=settings,
        customer_id=customer.id,
        on_erase=on_erase,
    )


def erase(
    *,
    session: Session,
    vault: Vault,
    settings: Settings,
    customer_id: str,
    on_erase: Sequence[OnErase],
) -> None:
    """The one erasure every path takes (the API, ``vrm customers erase``,
    a restore's replay). Works when the customer's keys or row are gone.
    ``on_erase`` is required so that no path can forget the layers above."""
    # Before the rows go: the customer's grants go with them (cascade).
    after = [hook(session, customer_id) for hook in on_erase]
    email_key = session.exec(
        select(Customer.email_index).where(col(Customer.id) == customer_id)
    ).first()
    # Journaled before anything is destroyed, so that restoring a backup
    # taken earlier erases the customer again (vrm/backup/journal.py).
    ErasureJournal.of(settings).record(customer_id)
    vault.shred(customer_id)
    for table in (HistoryRecord, DocumentRecord, LoginSession, DataKey):
        session.exec(delete(table).where(col(table.customer_id) == customer_id))
    session.exec(delete(LoginThrottle).where(col(LoginThrottle.key) == _confirm_key(customer_id)))
    if email_key is not None:
        throttle.forget_account(session, _throttle_prefix(vault, email_key))
    session.exec(delete(Customer).where(col(Customer.id) == customer_id))
    # Last, as every change-log write must be: vendors holding copies hear
    # of it on their feed, and the notices keep only the pairwise subject
    # each vendor already knows.
    for write in after:
        write()
    feed.forget_customer(
        session,
        customer_id=customer_id,
        subject_for=lambda vendor_id: pairwise_subject(vault, vendor_id, customer_id),
    )
    session.commit()
    scrub_wal(session.get_bind().engine)


def _confirm_key(customer_id: str) -> bytes:
    return b"confirm:" + customer_id.encode()
