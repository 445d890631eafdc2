"""The server keys: what each is for, what in the database needs it, and
the one check every start goes through.

A server key that is lost cannot be made again: a new blind-index key finds
no existing customer (and lets the same email sign up twice), a new token
key ends every session and vendor secret, new pairwise keys give vendors
new subjects. So keys are created only by ``vrm init``, and only while no
row depends on them; every other start refuses, naming the key, when one is
missing, unreadable or damaged, or (the blind-index key, the one the
database can vouch for) not the key the emails were indexed with
(:func:`load`).

Dependencies are named by table, not by model: the store sits below the
consent layer whose tables (vendors, grants, tokens) need these keys.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, insert, literal, select, table
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col
from sqlmodel import select as sql_select

from vrm.accounts.models import Customer
from vrm.accounts.service import account_email
from vrm.crypto.keystore import FileKeyStore, KeyMissing, KeyStore, KeyUnreadable
from vrm.db import make_engine
from vrm.errors import IntegrityFailure, KeyUnavailable
from vrm.keys.models import ServerKeyCheck
from vrm.keys.service import Vault
from vrm.settings import Settings

# How many customers the blind-index check tries before giving up.
_SAMPLE = 3


@dataclass(frozen=True)
class ServerKey:
    name: str
    # Tables whose rows were computed with the key or are checked with it.
    needed_by: tuple[str, ...]


SERVER_KEYS = (
    ServerKey("blind-index", ("customer",)),
    ServerKey(
        "token-hash",
        (
            "login_session",
            "vendor",
            "authorization_code",
            "oauth_token",
            "initial_access_token",
            "device_authorization",
        ),
    ),
    ServerKey("pairwise-subject", ("consent_grant", "feed_notice")),
    ServerKey("pairwise-event", ("consent_grant",)),
    ServerKey("signing-es256", ("consent_grant",)),
    ServerKey("deposit-key", ("vendor_deposit",)),
    # The seed of the audit log's Ed25519 checkpoint key (consent/audit/tree.py).
    ServerKey("audit-log", ("audit_checkpoint",)),
    # Binds form tokens to a login session: nothing stored outlives a form.
    ServerKey("csrf", ()),
)


class ServerKeyError(Exception):
    """A server key is missing or damaged; the message is one line naming
    it and what to do, for the operator."""


def _in_use(conn: Connection, key: ServerKey) -> list[str]:
    return [
        name
        for name in key.needed_by
        if conn.execute(select(literal(1)).select_from(table(name)).limit(1)).first()
    ]


def _problem(key: ServerKey, exc: KeyMissing, conn: Connection) -> str:
    if isinstance(exc, KeyUnreadable):
        return f"{exc}: restore it from the key store's backup; vrm init will not replace it"
    in_use = _in_use(conn, key)
    if in_use:
        return (
            f"{exc}, and the database holds data that needs it ({', '.join(in_use)}): "
            "restore it from the key store's backup; vrm init will not replace it"
        )
    return f"{exc}: run vrm init to create it"


def load(keystore: KeyStore, engine: Engine) -> None:
    """Read every server key once, so a running server never needs a key
    file again; raise :class:`ServerKeyError` for the first that is not
    there, not whole, or not this database's. Never creates a key; keeps
    the check of each key the database has none of yet."""
    found = problems(keystore, engine)
    if found:
        raise ServerKeyError(found[0])
    _keep_checks(keystore, engine)


_CHECK_MESSAGE = b"vrm-server-key-check/1"


def _check_of(key: bytes) -> bytes:
    return hmac.new(key, _CHECK_MESSAGE, "sha256").digest()


def _keep_checks(keystore: KeyStore, engine: Engine) -> None:
    """The check of each server key the database has none of (a new
    database, or one from before the checks): trusted on first use, after
    :func:`problems` found nothing wrong. Any number of processes may start
    at once: the first to write wins, the others' rows are the same."""
    with engine.begin() as conn:
        kept = set(conn.execute(select(ServerKeyCheck.name)).scalars())  # type: ignore[call-overload]
        for key in SERVER_KEYS:
            if key.name in kept:
                continue
            try:
                conn.execute(
                    insert(ServerKeyCheck).values(
                        name=key.name, mac=_check_of(keystore.server_key(key.name))
                    )
                )
            except IntegrityError:
                return  # another process kept them first


def _not_this_databases(keystore: KeyStore, conn: Connection, loaded: set[str]) -> list[str]:
    """Each loaded key whose check differs from the one the database kept."""
    rows = conn.execute(select(ServerKeyCheck.name, ServerKeyCheck.mac))  # type: ignore[call-overload]
    kept: dict[str, bytes] = {row[0]: row[1] for row in rows}
    return [
        f"server key {key.name} is not the key this database was made with (its check "
        "does not match): restore the right file from the key store's backup; vrm init will "
        "not replace it"
        for key in SERVER_KEYS
        if key.name in loaded
        and key.name in kept
        and not hmac.compare_digest(kept[key.name], _check_of(keystore.server_key(key.name)))
    ]


def create_missing(keystore: KeyStore, engine: Engine) -> list[str]:
    """``vrm init``: create each server key that is missing and that no row
    depends on; return their names. A damaged key, or a missing one that
    data depends on, raises :class:`ServerKeyError` and creates nothing."""
    missing: list[ServerKey] = []
    with engine.connect() as conn:
        for key in SERVER_KEYS:
            try:
                keystore.server_key(key.name)
            except KeyUnreadable as exc:
                raise ServerKeyError(_problem(key, exc, conn)) from None
            except KeyMissing as exc:
                if _in_use(conn, key):
                    raise ServerKeyError(_problem(key, exc, conn)) from None
                missing.append(key)
    created = [key.name for key in missing if keystore.create_server_key(key.name)]
    if created:
        # A new key that nothing needed: its old check goes with the old key.
        with engine.begin() as conn:
            conn.execute(delete(ServerKeyCheck).where(col(ServerKeyCheck.name).in_(created)))
    return created


def _wrong_blind_index(keystore: KeyStore, engine: Engine) -> str | None:
    """A whole blind-index key that is not the one the emails were indexed
    with (restored from another installation, or another key's file) finds
    no one at log-in, like a lost one. The first customers whose email
    opens tell; a customer whose own key is broken is skipped (vrm keys
    check lists them), and so is every customer who holds their own root
    key (the server cannot open their email): the key's kept check
    (:func:`_not_this_databases`) tells then."""
    vault = Vault(keystore, cache_seconds=0)
    with Session(engine) as session:
        sample = (
            sql_select(Customer)
            .where(col(Customer.root_by_password).is_(None))
            .order_by(col(Customer.id))
            .limit(_SAMPLE)
        )
        for customer in session.exec(sample):
            try:
                email = account_email(session=session, vault=vault, customer=customer)
            except (KeyUnavailable, IntegrityFailure):
                continue
            if hmac.compare_digest(vault.blind_index("email", email), customer.email_index):
                return None
            return (
                "server key blind-index is not the key the emails were indexed with "
                f"(customer {customer.id}'s email index does not match): restore the right "
                "file from the key store's backup; vrm init will not replace it"
            )
    return None


def problems(keystore: KeyStore, engine: Engine) -> list[str]:
    """Every server key that is missing, damaged or not the database's
    (its kept check differs; for the blind-index key, the emails' index
    too), one line each."""
    found = []
    loaded = set()
    with engine.connect() as conn:
        for key in SERVER_KEYS:
            try:
                keystore.server_key(key.name)
            except KeyMissing as exc:
                found.append(_problem(key, exc, conn))
            else:
                loaded.add(key.name)
        if not found:
            found += _not_this_databases(keystore, conn, loaded)
    if "blind-index" in loaded and (wrong := _wrong_blind_index(keystore, engine)) is not None:
        found = [p for p in found if not p.startswith("server key blind-index ")] + [wrong]
    return found


def open_key_store(settings: Settings, *, create: bool = False) -> FileKeyStore:
    """The configured key store with its server keys loaded (:func:`load`).
    With ``create`` (``vrm init``), first its folders and the server keys
    that are missing and that no data needs (:func:`create_missing`)."""
    store = FileKeyStore(settings.key_dir_resolved, cache_seconds=settings.key_cache_seconds)
    engine = make_engine(settings)
    try:
        if create:
            store.init()
            create_missing(store, engine)
        load(store, engine)
    finally:
        engine.dispose()
    return store
