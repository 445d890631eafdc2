"""Account use cases. Keyword-only, session first, no HTTP in here."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vrm.accounts import sessions, throttle
from vrm.accounts.models import Customer, LoginSession, LoginThrottle
from vrm.accounts.passwords import Passwords, Verified
from vrm.backup.journal import ErasureJournal
from vrm.catalogue import ACCOUNT
from vrm.crypto import aead
from vrm.db import scrub_wal
from vrm.dbtypes import utcnow
from vrm.errors import Conflict, Forbidden, IntegrityFailure, Unauthenticated, VRMError
from vrm.feed import changes as feed
from vrm.history import pending
from vrm.history.models import HistoryRecord
from vrm.history.pending import PendingDeposit
from vrm.keys import custody, sealed_box
from vrm.keys.models import DataKey
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import UNLOCK_SECONDS, Vault
from vrm.records import service as records
from vrm.records.models import DocumentRecord
from vrm.settings import Settings

logger = logging.getLogger(__name__)

WRONG_CREDENTIALS = "Email or password is wrong."
WRONG_RECOVERY = "Email or recovery key is wrong."

# What a layer above the store does when an account is erased (consent
# tells the vendors holding the customer's data). It is called with the
# erasure's session and the customer id before anything is destroyed, and
# returns what to write once the rows are gone: change-log writes come last
# (vrm/feed/changes.py). The composition passes them in (vrm/hooks.py).
OnErase = Callable[[Session, str], Callable[[], None]]

# What a layer above the store does when a customer-held customer's data
# keys change at log-in (consent escrows what each live grant reads, so
# that its vendor still reads it while the customer is away): their root
# key moved from the key store to them, or their documents were sealed
# again field by field, under keys a grant may not escrow yet. It is called
# in that change's transaction, their own root key held by the vault, with
# the session, the vault, the customer id and whether the root key moved;
# the composition passes it in (vrm/hooks.py).
OnKeysMoved = Callable[[Session, Vault, str, bool], None]


def _email_key(vault: Vault, email: str) -> bytes:
    return vault.blind_index("email", email)


def _address_key(vault: Vault, address: str) -> bytes:
    return vault.blind_index("client-address", address)


def _throttle_prefix(vault: Vault, email_key: bytes) -> bytes:
    return vault.blind_index("throttled-account", email_key.hex())


@dataclass(frozen=True)
class NewAccount:
    customer: Customer
    # Shown to the customer once, never stored: None when the server holds
    # the root key (settings.key_custody).
    recovery_key: str | None


def _hold_root(customer: Customer, passwords: Passwords, password: str, root: bytes) -> str:
    """Wrap ``root`` by a new ``password`` (the customer's stored password
    changes with it) and by a new recovery key, which it returns."""
    customer.password_hash, kek = passwords.new_verifier(password)
    customer.root_by_password = custody.wrap_root(kek, customer.id, root, by="password")
    recovery_key = custody.new_recovery_key()
    customer.root_by_recovery = custody.wrap_root(
        custody.recovery_kek(recovery_key, customer.id), customer.id, root, by="recovery"
    )
    return recovery_key


def sign_up(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    email: str,
    password: str,
) -> NewAccount:
    """Create the account, its keys and its empty documents. With
    customer-held keys, the root key is made here, wrapped by the password
    and a new recovery key, and forgotten when this returns."""
    index = _email_key(vault, email)
    if session.exec(select(Customer.id).where(col(Customer.email_index) == index)).first():
        raise Conflict("An account with this email already exists.")
    now = utcnow()
    customer = Customer(
        id=uuid.uuid4().hex,
        email_index=index,
        email_ct=b"",
        key_version=0,
        password_hash="",
        created_at=now,
        password_changed_at=now,
    )
    root = aead.new_key() if settings.key_custody == "customer" else None
    recovery_key = None
    if root is None:
        customer.password_hash = passwords.hash(password)
    else:
        recovery_key = _hold_root(customer, passwords, password, root)
        # What vendors deposit while the customer is away is sealed to it
        # (vrm/history/pending.py).
        customer.deposit_public_key, customer.deposit_private_key = sealed_box.new_key_pair(
            customer.id, root
        )
    try:
        session.add(customer)
        session.flush()
        vault.create_customer_keys(session, customer.id, root=root)
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
    vault.lock(customer.id)
    session.refresh(customer)
    return NewAccount(customer, recovery_key)


def _root_of(customer: Customer, verified: Verified) -> bytes | None:
    """The customer-held root key the password opens; None for a
    server-held one."""
    if verified.kek is None or customer.root_by_password is None:
        return None
    try:
        return custody.unwrap_root(
            verified.kek, customer.id, customer.root_by_password, by="password"
        )
    except aead.SealError:
        raise IntegrityFailure(
            "the customer's wrapped root key failed its integrity check"
        ) from None


def unlock_with_password(
    *, session: Session, vault: Vault, passwords: Passwords, customer: Customer, password: str
) -> None:
    """Hold the customer's own root key briefly (``vrm demo`` writes the
    demo customer's data as they would). Not throttled: the operator's
    command line only, never a request."""
    verified = passwords.check(customer.password_hash, password)
    if verified is None:
        raise Forbidden("The password is wrong.")
    root = _root_of(customer, verified)
    if root is not None:
        vault.unlock(customer.id, root, seconds=UNLOCK_SECONDS)


def account_email(*, session: Session, vault: Vault, customer: Customer) -> str:
    return vault.open(
        session.connection(),
        customer_id=customer.id,
        category=ACCOUNT,
        record_id=customer.id,
        key_version=customer.key_version,
        ciphertext=customer.email_ct,
    ).decode()


@dataclass(frozen=True)
class LoggedIn:
    customer: Customer
    # The session's raw token, for its cookie.
    token: str
    # Shown to the customer once, never stored: set only when this log-in
    # moved their root key to them (:func:`_move_to_customer`).
    recovery_key: str | None


def _move_to_customer(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    customer: Customer,
    password: str,
    on_keys_moved: OnKeysMoved,
) -> tuple[bytes | None, str | None]:
    """Move a server-held customer's root key to them (issue 19: existing
    customers move over at their next log-in): a new root key, wrapped by
    their password and a new recovery key, wraps their data keys, and each
    live grant escrows what it reads. In a savepoint of the log-in's
    transaction; the caller commits, then drops the key store's root keys
    (Vault.drop_server_root), so a failed transaction loses nothing.

    Returns (their root key, the new recovery key). If the move fails, the
    log-in goes on with the server-held keys (None, None) and the next one
    tries again; if another log-in moved them meanwhile, their root key
    and no recovery key (that log-in showed it)."""
    root = aead.new_key()
    try:
        with session.begin_nested():
            # Locks the row, so two log-ins at once do not both move them.
            session.refresh(customer, with_for_update=True)
            if custody.is_customer_held(customer.password_hash):
                verified = passwords.check(customer.password_hash, password)
                return (_root_of(customer, verified) if verified else None), None
            recovery_key = _hold_root(customer, passwords, password, root)
            session.add(customer)
            vault.move_to_customer(session, customer.id, root)
            on_keys_moved(session, vault, customer.id, True)
    # Any failure: the customer must still be able to log in, and nothing
    # has moved (the savepoint rolled back; the key store still holds their
    # root keys, and an escrow key made meanwhile opens no row).
    except Exception as exc:
        vault.lock(customer.id)
        # The exception's class only: its message may name the customer.
        logger.warning(
            "a customer's root key stays with the server after their log-in: the move "
            "failed (%s); it is tried again at their next log-in",
            exc.__class__.__name__,
        )
        return None, None
    return root, recovery_key


def _seal_by_field(
    *,
    session: Session,
    vault: Vault,
    customer_id: str,
    on_keys_moved: OnKeysMoved | None,
) -> None:
    """Documents sealed whole, from before per-field keys, are sealed again
    field by field at the customer's log-in, where their keys open
    (vrm/records/sealing.py); a customer-held customer's live grants then
    escrow the field keys they read (``on_keys_moved``). In a savepoint of
    the log-in's transaction: a document that does not open leaves
    everything as it was, still readable, and the next log-in tries again."""
    try:
        with session.begin_nested():
            sealed = records.seal_by_field(session=session, vault=vault, customer_id=customer_id)
            if sealed and on_keys_moved is not None:
                on_keys_moved(session, vault, customer_id, False)
    except VRMError as exc:
        logger.warning(
            "a customer's documents stay sealed whole after their log-in (%s); they are "
            "sealed by field at their next log-in",
            exc.__class__.__name__,
        )


def _drop_server_root(vault: Vault, customer_id: str) -> None:
    try:
        vault.drop_server_root(customer_id)
    except OSError as exc:
        # Committed: the customer holds their key now, and their recovery
        # key must still reach them. The key store's copy is left behind.
        # No traceback: its paths name the customer.
        logger.error(
            "a moved customer's root keys could not be destroyed in the key store (%s)",
            exc.strerror or exc.__class__.__name__,
        )


@dataclass(frozen=True)
class _Attempt:
    """A password or recovery key being tried for the account of an email,
    from a client address, with its throttles reserved."""

    customer: Customer | None
    at_address: throttle.Counter
    account_at_address: throttle.Counter

    def succeed(self, session: Session) -> None:
        throttle.succeed(session, hand_back=[self.at_address], forget=[self.account_at_address.key])


def _attempt(
    session: Session,
    vault: Vault,
    settings: Settings,
    email: str,
    client_address: str,
    kind: str,
) -> _Attempt:
    """Reserve the throttles of an attempt on the account of ``email`` (of
    ``kind``: "account-at-address" for a log-in, "recovery-at-address" for
    a recovery key) and find the account, if there is one."""
    account_key = _email_key(vault, email)
    # By address, and by account at that address; never by account alone,
    # which would let anyone lock the owner out (docs/threat-model.md).
    at_address = throttle.Counter(
        _address_key(vault, client_address), settings.login_max_failures_per_address
    )
    account_at_address = throttle.Counter(
        throttle.account_key(
            _throttle_prefix(vault, account_key),
            vault.blind_index(kind, f"{account_key.hex()} {client_address}"),
        ),
        settings.login_max_failures,
    )
    throttle.reserve(
        session, counters=[at_address, account_at_address], settings=settings, now=utcnow()
    )
    customer = session.exec(
        select(Customer).where(col(Customer.email_index) == account_key)
    ).first()
    return _Attempt(customer, at_address, account_at_address)


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
    on_keys_moved: OnKeysMoved,
) -> LoggedIn:
    """Check the credentials and open a session on ``device``. With
    ``key_custody`` "customer", a customer whose root key the server
    still holds gets it now (:func:`_move_to_customer`).

    Unknown email and wrong password take the same path, the same time and
    give the same error; both count towards the throttles.
    """
    attempt = _attempt(session, vault, settings, email, client_address, "account-at-address")
    customer = attempt.customer
    verified = passwords.check(customer.password_hash if customer else None, password)
    if verified is None or customer is None:
        raise Unauthenticated(WRONG_CREDENTIALS)
    attempt.succeed(session)
    sessions.forget_expired(session=session, customer_id=customer.id)
    root = _root_of(customer, verified)
    recovery_key = None
    if root is None and settings.key_custody == "customer":
        root, recovery_key = _move_to_customer(
            session=session,
            vault=vault,
            passwords=passwords,
            customer=customer,
            password=password,
            on_keys_moved=on_keys_moved,
        )
    if passwords.needs_rehash(customer.password_hash):
        if root is None:
            customer.password_hash = passwords.hash(password)
        else:
            customer.password_hash, kek = passwords.new_verifier(password)
            customer.root_by_password = custody.wrap_root(kek, customer.id, root, by="password")
        session.add(customer)
    if root is not None:
        vault.unlock(customer.id, root, seconds=UNLOCK_SECONDS)
    _seal_by_field(
        session=session,
        vault=vault,
        customer_id=customer.id,
        on_keys_moved=on_keys_moved if root is not None else None,
    )
    token = sessions.open_session(
        session=session,
        vault=vault,
        settings=settings,
        customer_id=customer.id,
        device=device,
        root=root,
    )
    session.commit()
    if recovery_key is not None:
        _drop_server_root(vault, customer.id)
    if root is not None:
        # After the log-in's commit, in a transaction of its own: a deposit
        # that cannot be folded must not fail the log-in.
        _take_deposits(session=session, vault=vault, customer=customer, root=root)
    return LoggedIn(customer, token, recovery_key)


def _take_deposits(*, session: Session, vault: Vault, customer: Customer, root: bytes) -> None:
    """What vendors deposited while the customer was away, into their
    history. A customer from before migration 0021 gets their deposit key
    pair here, once: of two log-ins at once, the first to write it wins,
    and the other reads it back, so that no deposit is sealed to a key
    that was then lost."""
    if customer.deposit_public_key is None:
        public_key, private_key = sealed_box.new_key_pair(customer.id, root)
        session.exec(
            update(Customer)
            .where(col(Customer.id) == customer.id, col(Customer.deposit_public_key).is_(None))
            .values(deposit_public_key=public_key, deposit_private_key=private_key)
        )
        session.commit()
        session.refresh(customer)
    pending.fold(session=session, vault=vault, customer=customer, root=root)


def _confirm_password(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    customer: Customer,
    password: str,
    now: datetime,
) -> Verified:
    # Re-entering a password is throttled like a log-in: a stolen session
    # must not become a password oracle.
    key = _confirm_key(customer.id)
    throttle.reserve(
        session,
        counters=[throttle.Counter(key, settings.login_max_failures)],
        settings=settings,
        now=now,
    )
    verified = passwords.check(customer.password_hash, password)
    if verified is None:
        raise Forbidden("The password is wrong.")
    throttle.succeed(session, forget=[key])
    return verified


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
    caller on ``device`` (returns its token). A customer-held root key is
    rewrapped by the new password; the recovery key stays as it was."""
    now = utcnow()
    verified = _confirm_password(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        customer=customer,
        password=current_password,
        now=now,
    )
    root = _root_of(customer, verified)
    if root is None:
        customer.password_hash = passwords.hash(new_password)
    else:
        customer.password_hash, kek = passwords.new_verifier(new_password)
        customer.root_by_password = custody.wrap_root(kek, customer.id, root, by="password")
    customer.password_changed_at = now
    session.add(customer)
    sessions.end_all(session=session, customer_id=customer.id)
    token = sessions.open_session(
        session=session,
        vault=vault,
        settings=settings,
        customer_id=customer.id,
        device=device,
        root=root,
    )
    session.commit()
    return token


def recover(
    *,
    session: Session,
    vault: Vault,
    passwords: Passwords,
    settings: Settings,
    email: str,
    recovery_key: str,
    new_password: str,
    client_address: str,
) -> str:
    """A forgotten password: the recovery key opens the root key, which is
    wrapped by ``new_password`` and by a new recovery key (returned: the
    old one was typed somewhere). Every session ends. Throttled and
    answered like a log-in: an unknown email, a server-held account (which
    has no recovery key) and a wrong key are the same error."""
    now = utcnow()
    attempt = _attempt(session, vault, settings, email, client_address, "recovery-at-address")
    customer = attempt.customer
    root = None
    if customer is not None and customer.root_by_recovery is not None:
        try:
            kek = custody.recovery_kek(recovery_key, customer.id)
            root = custody.unwrap_root(kek, customer.id, customer.root_by_recovery, by="recovery")
        except (custody.RecoveryKeyError, aead.SealError):
            root = None
    if customer is None or root is None:
        raise Unauthenticated(WRONG_RECOVERY)
    attempt.succeed(session)
    new_recovery_key = _hold_root(customer, passwords, new_password, root)
    customer.password_changed_at = now
    session.add(customer)
    sessions.end_all(session=session, customer_id=customer.id)
    session.commit()
    vault.lock(customer.id)
    return new_recovery_key


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
    vault.end_escrows_of(session, customer_id)
    vault.shred(customer_id)
    for table in (HistoryRecord, PendingDeposit, DocumentRecord, LoginSession, DataKey):
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
