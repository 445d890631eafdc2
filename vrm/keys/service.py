"""The vault: seals and opens record content with per-customer data keys.

Each customer has one data key per category, wrapped by the customer's root
key in the key store. Unwrapped data keys are cached in memory for
``key_cache_seconds`` so a request costs one AES-GCM operation per record and
no key-store round trip.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from vrm.catalogue import KEYED_CATEGORIES
from vrm.crypto import aead
from vrm.crypto.keystore import KeyMissing, KeyStore
from vrm.dbtypes import utcnow
from vrm.errors import IntegrityFailure, KeyUnavailable
from vrm.keys.derived import Derived
from vrm.keys.models import DataKey
from vrm.storage.statements import ManyKeys

logger = logging.getLogger(__name__)

DATA_KEY_VERSION = 1
# Bound on cached data keys (about 100 bytes each with their tuple keys).
_CACHE_MAX_ENTRIES = 50_000
# Default bound on what is kept decrypted (vrm/keys/derived.py).
DERIVED_BYTES = 64 * 1024 * 1024
# How long a rotation keeps the old root key versions after the last rewrap:
# a read whose transaction began before a customer's rewrap committed still
# sees the old rows, and must still find the key they name.
RETIRE_GRACE_SECONDS = 5.0


# A data key's wrapping, read on a plain Connection (the vendor read path).
_WRAPPED = core_select(DataKey.root_version, DataKey.wrapped).where(  # type: ignore[call-overload]
    col(DataKey.customer_id) == bindparam("c"),
    col(DataKey.category) == bindparam("k"),
    col(DataKey.version) == bindparam("v"),
)

# The wrappings of several customers' data keys.
_WRAPPED_OF = ManyKeys(
    core_select(  # type: ignore[call-overload]
        DataKey.customer_id,
        DataKey.category,
        DataKey.version,
        DataKey.root_version,
        DataKey.wrapped,
    ),
    DataKey.customer_id,
)


def wrap_aad(customer_id: str, category: str, version: int, root_version: int) -> bytes:
    return aead.associated_data("vrm-data-key/1", customer_id, category, version, root_version)


def record_aad(customer_id: str, category: str, record_id: str, key_version: int) -> bytes:
    return aead.associated_data("vrm-record/1", customer_id, category, record_id, key_version)


@dataclass
class Sealed:
    key_version: int
    ciphertext: bytes


# Reads a data key's (root version, wrapped key) by (customer, category, version).
_Wrapping = Callable[[tuple[str, str, int]], tuple[int, bytes] | None]


def _in_session(session: Session) -> _Wrapping:
    def wrapping(key: tuple[str, str, int]) -> tuple[int, bytes] | None:
        # Through the session: it sees keys added but not yet flushed.
        row = session.get(DataKey, key)
        return (row.root_version, row.wrapped) if row is not None else None

    return wrapping


def _on_connection(conn: Connection) -> _Wrapping:
    def wrapping(key: tuple[str, str, int]) -> tuple[int, bytes] | None:
        row = conn.execute(_WRAPPED, {"c": key[0], "k": key[1], "v": key[2]}).first()
        return (row[0], row[1]) if row is not None else None

    return wrapping


def _failed(category: str) -> IntegrityFailure:
    """What a record that fails its integrity check raises (and logs,
    without the record's customer or id)."""
    logger.warning("record failed to open: category=%s", category)
    return IntegrityFailure(f"a stored {category} record failed its integrity check")


@dataclass
class RotationReport:
    customers: int
    data_keys: int
    retired_versions: int


# Told of each customer's rewrap by Vault.rotate, in its transaction:
# (session, customer id, new root key version, data keys rewrapped).
OnRewrap = Callable[[Session, str, int, int], None]


class Vault:
    def __init__(
        self,
        keystore: KeyStore,
        *,
        cache_seconds: float = 60.0,
        derived_bytes: int = DERIVED_BYTES,
    ) -> None:
        self.keystore = keystore
        self.cache_seconds = cache_seconds
        # What was decrypted, for records read again and again (derived.py).
        self.derived = Derived(max_bytes=derived_bytes, seconds=cache_seconds)
        self._cache: dict[tuple[str, str, int], tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        # Server key name -> an HMAC keyed with it, to copy (server_mac).
        self._keyed: dict[str, hmac.HMAC] = {}

    # -- blind indexes --------------------------------------------------
    def blind_index(self, purpose: str, value: str) -> bytes:
        """Keyed HMAC-SHA256 of a normalised value, for equality lookups
        without storing the value (emails, client addresses)."""
        normalised = unicodedata.normalize("NFKC", value).strip().casefold()
        return self.server_mac("blind-index", f"{purpose}\0{normalised}".encode())

    def server_mac(self, key_name: str, message: bytes) -> bytes:
        """HMAC-SHA256 of ``message`` under the server key ``key_name``.
        A copy of one HMAC keyed once is cheaper than keying anew
        (docs/performance.md#the-drivers-cursor-and-decoding): a refresh
        hashes four tokens, a history read one id per event. Every HMAC under
        a server key is made here (blind indexes, token hashes, pairwise ids,
        deposit keys)."""
        keyed = self._keyed.get(key_name)
        if keyed is None:
            key = self.keystore.server_key(key_name)
            keyed = self._keyed.setdefault(key_name, hmac.new(key, digestmod=hashlib.sha256))
        mac = keyed.copy()
        mac.update(message)
        return mac.digest()

    def token_hash(self, token: str) -> bytes:
        """Keyed HMAC-SHA256 of a token or secret, as stored in place of it."""
        return self.server_mac("token-hash", token.encode())

    # -- customer keys --------------------------------------------------
    def create_customer_keys(self, session: Session, customer_id: str) -> None:
        """Create the root key and one data key per category. The caller
        commits; if it rolls back, :meth:`shred` removes the root key."""
        root_version = self.keystore.create_root_key(customer_id)
        now = utcnow()
        for category in KEYED_CATEGORIES:
            key, row = self._new_data_key(customer_id, category, root_version, now)
            session.add(row)
            # Sign-up seals with these at once; no need to read them back.
            self._remember((customer_id, category, DATA_KEY_VERSION), key, time.monotonic())

    def _new_data_key(
        self, customer_id: str, category: str, root_version: int, now: datetime
    ) -> tuple[bytes, DataKey]:
        key = aead.new_key()
        wrapped = self.keystore.wrap(
            customer_id,
            root_version,
            key,
            wrap_aad(customer_id, category, DATA_KEY_VERSION, root_version),
        )
        return key, DataKey(
            customer_id=customer_id,
            category=category,
            version=DATA_KEY_VERSION,
            root_version=root_version,
            wrapped=wrapped,
            created_at=now,
        )

    def _data_key(
        self, wrapping: _Wrapping, customer_id: str, category: str, version: int
    ) -> bytes:
        """The data key, from the cache or unwrapped from what
        ``wrapping(cache_key)`` reads: (root version, wrapped key)."""
        cache_key = (customer_id, category, version)
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[1] > now:
            return hit[0]
        found = wrapping(cache_key)
        if found is None:
            raise KeyUnavailable("no data key for this record")
        root_version, wrapped = found
        try:
            key = self.keystore.unwrap(
                customer_id,
                root_version,
                wrapped,
                wrap_aad(customer_id, category, version, root_version),
            )
        except KeyMissing:
            raise KeyUnavailable("the customer's root key is gone (erased or missing)") from None
        except aead.SealError:
            raise IntegrityFailure("a wrapped data key failed its integrity check") from None
        self._remember(cache_key, key, now)
        return key

    def remember_keys(
        self, conn: Connection, customer_ids: Iterable[str], categories: Collection[str]
    ) -> None:
        """Unwrap these customers' data keys of ``categories`` into the
        cache, reading their wrappings in one query (ManyKeys,
        vrm/storage/statements.py): a read of many customers (the feed's first sync) then
        costs no query per customer and category. A key that cannot be
        unwrapped is left out, for the read that needs it to fail as it
        would have. Nothing, when the cache keeps nothing."""
        if self.cache_seconds <= 0:
            return
        # A warm read has them all: no query then. (A record sealed under
        # another version than the current one finds its key as it would
        # have, one query for it.)
        now = time.monotonic()
        cache = self._cache
        wanted = [
            customer_id
            for customer_id in customer_ids
            if any(
                (hit := cache.get((customer_id, category, DATA_KEY_VERSION))) is None
                or hit[1] <= now
                for category in categories
            )
        ]
        wrappings = {
            (customer_id, category, version): (root_version, wrapped)
            for customer_id, category, version, root_version, wrapped in _WRAPPED_OF.rows(
                conn, wanted
            )
            if category in categories
        }
        for customer_id, category, version in wrappings:
            try:
                self._data_key(wrappings.get, customer_id, category, version)
            except (KeyUnavailable, IntegrityFailure):
                continue

    def _remember(self, cache_key: tuple[str, str, int], key: bytes, now: float) -> None:
        with self._lock:
            if len(self._cache) >= _CACHE_MAX_ENTRIES:
                self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                if len(self._cache) >= _CACHE_MAX_ENTRIES:
                    self._cache.clear()
            self._cache[cache_key] = (key, now + self.cache_seconds)

    def seal(
        self, session: Session, *, customer_id: str, category: str, record_id: str, plaintext: bytes
    ) -> Sealed:
        key = self._data_key(_in_session(session), customer_id, category, DATA_KEY_VERSION)
        blob = aead.seal(
            key, plaintext, record_aad(customer_id, category, record_id, DATA_KEY_VERSION)
        )
        return Sealed(DATA_KEY_VERSION, blob)

    def open(
        self,
        conn: Connection,
        *,
        customer_id: str,
        category: str,
        record_id: str,
        key_version: int,
        ciphertext: bytes,
    ) -> bytes:
        key = self._data_key(_on_connection(conn), customer_id, category, key_version)
        try:
            return aead.open_sealed(
                key, ciphertext, record_aad(customer_id, category, record_id, key_version)
            )
        except aead.SealError:
            raise _failed(category) from None

    def open_many(
        self,
        conn: Connection,
        *,
        customer_id: str,
        category: str,
        records: Sequence[tuple[str, int, bytes]],
    ) -> list[bytes]:
        """Several records of one customer and category, each (record id,
        key version, ciphertext), opened as :meth:`open` opens one: each
        data key is looked up and set up once for them all. One that fails
        its integrity check fails them all."""
        opened: dict[int, bytes] = {}
        versions = {version for _, version, _ in records}
        wrapping = _on_connection(conn)
        for version in versions:
            key = self._data_key(wrapping, customer_id, category, version)
            theirs = [(i, r) for i, r in enumerate(records) if r[1] == version]
            try:
                plaintexts = aead.open_many(
                    key,
                    [
                        (ciphertext, record_aad(customer_id, category, record_id, version))
                        for _, (record_id, _, ciphertext) in theirs
                    ],
                )
            except aead.SealError:
                raise _failed(category) from None
            opened.update((i, p) for (i, _), p in zip(theirs, plaintexts, strict=True))
        return [opened[i] for i in range(len(records))]

    # -- erasure and rotation -------------------------------------------
    def shred(self, customer_id: str) -> None:
        """Destroy the customer's root keys: everything sealed for them, in
        this database and in every backup of it, becomes unreadable."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == customer_id]:
                del self._cache[key]
        self.derived.forget(customer_id)
        self.keystore.destroy_customer(customer_id)

    def rotate(
        self,
        session: Session,
        *,
        grace_seconds: float = RETIRE_GRACE_SECONDS,
        on_rewrap: OnRewrap | None = None,
    ) -> RotationReport:
        """Rewrap every data key under a new root key version, one customer
        per transaction, then retire the old versions. ``on_rewrap`` (the
        audit log's, vrm/hooks.py) is told of each customer's rewrap in its
        transaction.

        Readers keep working throughout: a data key row names the root
        version that wraps it, and that version stays in the key store until
        every row has moved on, and ``grace_seconds`` more, for the reads
        whose snapshot began before the rewrap committed.
        """
        customer_ids = session.exec(select(DataKey.customer_id).distinct()).all()
        rewrapped = 0
        to_retire: list[tuple[str, int]] = []
        for customer_id in customer_ids:
            old_versions = self.keystore.versions(customer_id)
            new_version = self.keystore.create_root_key(customer_id)
            rows = session.exec(
                select(DataKey).where(col(DataKey.customer_id) == customer_id)
            ).all()
            try:
                for row in rows:
                    plain = self.keystore.unwrap(
                        customer_id,
                        row.root_version,
                        row.wrapped,
                        wrap_aad(customer_id, row.category, row.version, row.root_version),
                    )
                    row.wrapped = self.keystore.wrap(
                        customer_id,
                        new_version,
                        plain,
                        wrap_aad(customer_id, row.category, row.version, new_version),
                    )
                    row.root_version = new_version
                    session.add(row)
                if on_rewrap is not None:
                    on_rewrap(session, customer_id, new_version, len(rows))
                session.commit()
            except KeyMissing:
                # Erased while we worked: its rows are going anyway.
                session.rollback()
                continue
            rewrapped += len(rows)
            to_retire += [(customer_id, v) for v in old_versions]
        if to_retire:
            time.sleep(grace_seconds)
        for customer_id, version in to_retire:
            self.keystore.retire_version(customer_id, version)
        return RotationReport(len(customer_ids), rewrapped, len(to_retire))
