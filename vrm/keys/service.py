"""The vault: seals and opens record content with per-customer data keys.

Each customer has one data key per category (vrm/catalogue, ``DATA_KEYS``),
wrapped by the customer's root key: their own (customer-held,
vrm/keys/custody.py) or one in the key store. Each field of a document
category has a key of its own derived from its category's (HKDF-SHA256,
:func:`field_key_of`), which a grant of that field alone escrows
(vrm/records/sealing.py). Unwrapped data keys are cached in memory for
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

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Connection, bindparam, delete
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from vrm.catalogue import DATA_KEYS
from vrm.crypto import aead
from vrm.crypto.keystore import KeyMissing, KeyStore, KeyUnreadable
from vrm.dbtypes import utcnow
from vrm.errors import IntegrityFailure, KeyUnavailable
from vrm.keys.custody import CUSTOMER_ROOT
from vrm.keys.derived import Derived
from vrm.keys.models import DataKey, KeyEscrow
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
# How long a customer's own root key is held after the request of theirs
# that presented it (vrm/accounts/sessions.py): long enough for the
# request, and never past their session's end.
UNLOCK_SECONDS = 30.0


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


# Every copy of a data key escrowed for a live holder. Any will do (each
# opens the same key, and the rules of who may read what are the grant's),
# so all are tried: one whose escrow key is lost or damaged must not stop
# the grants whose copies open.
_ESCROWED = (
    core_select(KeyEscrow.holder_id, KeyEscrow.escrow_version, KeyEscrow.wrapped)  # type: ignore[call-overload]
    .where(
        col(KeyEscrow.customer_id) == bindparam("c"),
        col(KeyEscrow.category) == bindparam("k"),
        col(KeyEscrow.version) == bindparam("v"),
    )
    .order_by(col(KeyEscrow.holder_id))
)

# The escrowed copies of several customers' data keys.
_ESCROWED_OF = ManyKeys(
    core_select(  # type: ignore[call-overload]
        KeyEscrow.customer_id,
        KeyEscrow.category,
        KeyEscrow.version,
        KeyEscrow.holder_id,
        KeyEscrow.escrow_version,
        KeyEscrow.wrapped,
    ),
    KeyEscrow.customer_id,
)


def wrap_aad(customer_id: str, category: str, version: int, root_version: int) -> bytes:
    return aead.associated_data("vrm-data-key/1", customer_id, category, version, root_version)


def escrow_aad(holder_id: str, customer_id: str, category: str, version: int) -> bytes:
    return aead.associated_data("vrm-escrow/1", holder_id, customer_id, category, version)


def record_aad(customer_id: str, category: str, record_id: str, key_version: int) -> bytes:
    return aead.associated_data("vrm-record/1", customer_id, category, record_id, key_version)


@dataclass
class Sealed:
    key_version: int
    ciphertext: bytes


# A data key's name: (customer id, category, version).
_KeyName = tuple[str, str, int]
# An escrowed copy: (holder id, escrow key version, wrapped key).
_Escrowed = tuple[str, int, bytes]


class _Wrappings:
    """Where a data key's wrappings are read: its row (root version,
    wrapped key) and, for a customer-held key, an escrowed copy."""

    def __init__(self, conn: Callable[[], Connection]) -> None:
        self._conn = conn

    def wrapping(self, key: _KeyName) -> tuple[int, bytes] | None:
        row = self._conn().execute(_WRAPPED, {"c": key[0], "k": key[1], "v": key[2]}).first()
        return (row[0], row[1]) if row is not None else None

    def escrowed(self, key: _KeyName) -> list[_Escrowed]:
        rows = self._conn().execute(_ESCROWED, {"c": key[0], "k": key[1], "v": key[2]})
        return [(row[0], row[1], row[2]) for row in rows]


class _InSession(_Wrappings):
    def __init__(self, session: Session) -> None:
        super().__init__(session.connection)
        self._session = session

    def wrapping(self, key: _KeyName) -> tuple[int, bytes] | None:
        # Through the session: it sees keys added but not yet flushed.
        row = self._session.get(DataKey, key)
        return (row.root_version, row.wrapped) if row is not None else None


class _Read(_Wrappings):
    """Wrappings read beforehand, for many keys at once."""

    def __init__(
        self,
        wrappings: dict[_KeyName, tuple[int, bytes]],
        escrowed: dict[_KeyName, list[_Escrowed]],
    ) -> None:
        self._wrappings = wrappings
        self._escrowed = escrowed

    def wrapping(self, key: _KeyName) -> tuple[int, bytes] | None:
        return self._wrappings.get(key)

    def escrowed(self, key: _KeyName) -> list[_Escrowed]:
        return self._escrowed.get(key, [])


def field_key_of(category_key: bytes, name: str) -> bytes:
    """The data key of one field (``name``: ``profile.email``), derived
    from its category's: whoever holds the category's key has every field's
    (a grant of the whole category escrows that one key), and a field's key
    opens that field alone (HKDF is one-way)."""
    info = aead.associated_data("vrm-field-key/1", name)
    return HKDF(algorithm=hashes.SHA256(), length=aead.KEY_BYTES, salt=None, info=info).derive(
        category_key
    )


def _category_of(name: str) -> str:
    """The category whose wrapped data key a key name opens from: itself,
    or the one a field's key derives from (``profile`` for
    ``profile.email``)."""
    return name.partition(".")[0]


def record_failed(category: str) -> IntegrityFailure:
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
        # Customer id -> (their own root key, monotonic time it is forgotten),
        # while a session of theirs presents it (unlock).
        self._roots: dict[str, tuple[bytes, float]] = {}

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
    def create_customer_keys(
        self, session: Session, customer_id: str, *, root: bytes | None = None
    ) -> None:
        """Create the customer's data keys (``DATA_KEYS``: one per category;
        each field's derives from its category's), wrapped by their own
        ``root`` key (customer-held, vrm/keys/custody.py), or, without one,
        by a new root key in the key store. The caller commits; if it rolls
        back, :meth:`shred` removes what the key store made."""
        if root is None:
            root_version = self.keystore.create_root_key(customer_id)
        else:
            root_version = CUSTOMER_ROOT
            self.unlock(customer_id, root, seconds=UNLOCK_SECONDS)
        now = utcnow()
        for category in DATA_KEYS:
            key = aead.new_key()
            aad = wrap_aad(customer_id, category, DATA_KEY_VERSION, root_version)
            wrapped = (
                self.keystore.wrap(customer_id, root_version, key, aad)
                if root is None
                else aead.seal(root, key, aad)
            )
            session.add(
                DataKey(
                    customer_id=customer_id,
                    category=category,
                    version=DATA_KEY_VERSION,
                    root_version=root_version,
                    wrapped=wrapped,
                    created_at=now,
                )
            )
            # Sign-up seals with these at once; no need to read them back.
            self._remember((customer_id, category, DATA_KEY_VERSION), key, time.monotonic())

    def move_to_customer(self, session: Session, customer_id: str, root: bytes) -> None:
        """Rewrap the customer's data keys, wrapped until now by root keys
        in the key store, under ``root``, their own from now on
        (customer-held, vrm/keys/custody.py), and hold ``root`` as their
        session would. The caller commits, and only then calls
        :meth:`drop_server_root`: until then the key store's root keys open
        the rows as they were, for other transactions and for this one if
        it fails. (Unlike :meth:`rotate`, nothing waits after the commit: a
        read whose snapshot began before it and that unwraps after the drop
        finds no key, and fails as for an erased customer, that once.)
        Raises KeyUnavailable (a root key is gone: erased meanwhile) or
        IntegrityFailure (a data key that does not open), having changed
        nothing."""
        rows = session.exec(
            select(DataKey).where(
                col(DataKey.customer_id) == customer_id,
                col(DataKey.root_version) != CUSTOMER_ROOT,
            )
        ).all()
        rewrapped: list[bytes] = []
        for row in rows:
            try:
                plain = self.keystore.unwrap(
                    customer_id,
                    row.root_version,
                    row.wrapped,
                    wrap_aad(customer_id, row.category, row.version, row.root_version),
                )
            except KeyMissing:
                raise KeyUnavailable(
                    "the customer's root key is gone (erased or missing)"
                ) from None
            except aead.SealError:
                raise IntegrityFailure("a wrapped data key failed its integrity check") from None
            aad = wrap_aad(customer_id, row.category, row.version, CUSTOMER_ROOT)
            rewrapped.append(aead.seal(root, plain, aad))
        # Unwrapped all before changing any: a failure leaves the rows as
        # they were.
        for row, wrapped in zip(rows, rewrapped, strict=True):
            row.wrapped, row.root_version = wrapped, CUSTOMER_ROOT
            session.add(row)
        # What the key store's root key opened was cached for
        # ``cache_seconds``; from now on it is kept no longer than ``root``.
        self.lock(customer_id)
        self.unlock(customer_id, root, seconds=UNLOCK_SECONDS)

    def drop_server_root(self, customer_id: str) -> None:
        """Destroy the key store's root keys of a customer whose data keys
        moved to their own (:meth:`move_to_customer`), once that committed:
        a copy of the key store taken from now on opens none of their data
        keys. (A backup taken before still does, with the database of its
        time: docs/keys.md, "Moving over".)"""
        self.keystore.destroy_customer(customer_id)

    def unlock(self, customer_id: str, root: bytes, *, seconds: float) -> None:
        """Hold the customer's own root key for at most ``seconds``: their
        session presented it (vrm/accounts/sessions.py). Data keys it
        opens are kept no longer."""
        with self._lock:
            self._roots[customer_id] = (root, time.monotonic() + seconds)

    def holds_root(self, customer_id: str) -> bool:
        """Whether this process holds the customer's own root key now
        (a session of theirs presented it within :data:`UNLOCK_SECONDS`)."""
        return self._unlocked(customer_id, time.monotonic()) is not None

    def lock(self, customer_id: str) -> None:
        """Forget the customer's root key, and every data key and value
        this process holds for them: their session ended. What a live grant
        escrows opens again from the escrow when a vendor reads."""
        with self._lock:
            self._roots.pop(customer_id, None)
        self._drop_cached(customer_id)

    def _drop_cached(self, customer_id: str) -> None:
        """Drop every data key and decrypted value this process holds for
        the customer."""
        with self._lock:
            for key in [k for k in self._cache if k[0] == customer_id]:
                del self._cache[key]
        self.derived.forget(customer_id)

    def opens(self, session: Session, customer_id: str, category: str) -> bool:
        """Whether the customer's data key of ``category`` opens now (the
        server's root key wraps it, their session unlocked their own, or a
        live grant escrows it), without raising when it does not: where a
        vendor's deposit goes (vrm/history/pending.py). A wrapping that
        fails its integrity check still raises: that is damage, not
        absence."""
        try:
            self._data_key(_InSession(session), customer_id, category, DATA_KEY_VERSION)
        except KeyUnavailable:
            return False
        return True

    def _unlocked(self, customer_id: str, now: float) -> tuple[bytes, float] | None:
        held = self._roots.get(customer_id)
        if held is None or held[1] <= now:
            return None
        return held

    def _data_key(
        self, wrappings: _Wrappings, customer_id: str, category: str, version: int
    ) -> bytes:
        """The data key, from the cache or unwrapped from what
        ``wrappings`` reads: by the key store's root key, by the
        customer's own while it is unlocked, else from an escrowed copy. A
        field's key is derived from its category's where that opens, else
        taken from its own escrowed copy."""
        cache_key = (customer_id, category, version)
        now = time.monotonic()
        hit = self._cache.get(cache_key)
        if hit is not None and hit[1] > now:
            return hit[0]
        parent = _category_of(category)
        if parent != category:
            return self._field_key(wrappings, cache_key, parent, now)
        found = wrappings.wrapping(cache_key)
        if found is None:
            raise KeyUnavailable("no data key for this record")
        key, until = self._unwrap(wrappings, cache_key, found, now)
        self._remember(cache_key, key, now, until)
        return key

    def _unwrap(
        self, wrappings: _Wrappings, name: _KeyName, found: tuple[int, bytes], now: float
    ) -> tuple[bytes, float]:
        """A category's data key from its wrapping, and until when it may
        be kept."""
        customer_id, category, version = name
        root_version, wrapped = found
        until = now + self.cache_seconds
        try:
            if root_version != CUSTOMER_ROOT:
                key = self.keystore.unwrap(
                    customer_id,
                    root_version,
                    wrapped,
                    wrap_aad(customer_id, category, version, root_version),
                )
            elif (held := self._unlocked(customer_id, now)) is not None:
                key = aead.open_sealed(
                    held[0], wrapped, wrap_aad(customer_id, category, version, root_version)
                )
                until = min(until, held[1])
            else:
                key = self._from_escrow(wrappings, name)
        except KeyMissing:
            raise KeyUnavailable("the customer's root key is gone (erased or missing)") from None
        except aead.SealError:
            raise IntegrityFailure("a wrapped data key failed its integrity check") from None
        return key, until

    def _field_key(self, wrappings: _Wrappings, name: _KeyName, parent: str, now: float) -> bytes:
        """A field's key: derived from its category's, which opens where
        it would (kept no longer than it); or, for a customer-held customer
        who is away with no grant of the whole category, from the copy a
        grant of this field escrows."""
        customer_id, field, version = name
        parent_name = (customer_id, parent, version)
        hit = self._cache.get(parent_name)
        if hit is not None and hit[1] > now:
            category_key, until = hit
        else:
            found = wrappings.wrapping(parent_name)
            if found is None:
                raise KeyUnavailable("no data key for this record")
            away = found[0] == CUSTOMER_ROOT and self._unlocked(customer_id, now) is None
            if away and not wrappings.escrowed(parent_name):
                key = self._from_escrow(wrappings, name)
                self._remember(name, key, now)
                return key
            category_key, until = self._unwrap(wrappings, parent_name, found, now)
            self._remember(parent_name, category_key, now, until)
        key = field_key_of(category_key, field)
        self._remember(name, key, now, until)
        return key

    def _from_escrow(self, wrappings: _Wrappings, name: _KeyName) -> bytes:
        copies = wrappings.escrowed(name)
        if not copies:
            raise KeyUnavailable(
                "the customer holds this key: it opens only in their session or for a live "
                "grant that shares it"
            )
        # Why each copy did not open, for the log: a lost escrow key and a
        # damaged one (or a damaged copy) need different repairs.
        failures: list[str] = []
        for holder_id, escrow_version, wrapped in copies:
            try:
                return self.keystore.escrow_unwrap(
                    holder_id, escrow_version, wrapped, escrow_aad(holder_id, *name)
                )
            except KeyUnreadable:
                failures.append("escrow key unreadable")
            except KeyMissing:
                # Lost, or destroyed by a revocation whose row delete has
                # not reached this read's snapshot: the grant is ending.
                failures.append("escrow key missing")
            except aead.SealError:
                failures.append("integrity check failed")
        # Without the grant's or the customer's id, as record_failed logs;
        # `vrm keys check` names the grant.
        logger.warning("an escrowed %s data key did not open: %s", name[1], ", ".join(failures))
        if "integrity check failed" in failures:
            raise IntegrityFailure("an escrowed data key failed its integrity check")
        raise KeyUnavailable(
            "the escrow key of the grant that shared this key is gone or unreadable "
            "(the grant ended, or the key store lost it)"
        )

    def remember_keys(
        self, conn: Connection, customer_ids: Iterable[str], keys: Collection[str]
    ) -> None:
        """Unwrap these customers' data keys named ``keys`` into the
        cache, reading their wrappings (and escrowed copies) in one query
        each (ManyKeys, vrm/storage/statements.py): a read of many customers
        (the feed's first sync) then costs no query per customer and
        category. A key that cannot be unwrapped is left out, for the read
        that needs it to fail as it would have. Nothing, when the cache
        keeps nothing."""
        if self.cache_seconds <= 0:
            return
        # A warm read has them all: no query then. (A record sealed under
        # another version than the current one finds its key as it would
        # have, one query for it.)
        now = time.monotonic()
        wanted = [
            customer_id
            for customer_id in customer_ids
            if any(not self._cached(customer_id, name, now) for name in keys)
        ]
        if not wanted:
            return
        # A field's key derives from its category's, or is escrowed alone.
        rows = {_category_of(name) for name in keys}
        wrappings = {
            (customer_id, category, version): (root_version, wrapped)
            for customer_id, category, version, root_version, wrapped in _WRAPPED_OF.rows(
                conn, wanted
            )
            if category in rows
        }
        held = [name[0] for name, (root_version, _) in wrappings.items() if root_version == 0]
        escrowed: dict[_KeyName, list[_Escrowed]] = {}
        for customer_id, category, version, holder_id, escrow_version, wrapped in (
            _ESCROWED_OF.rows(conn, held) if held else []
        ):
            if category in keys or category in rows:
                escrowed.setdefault((customer_id, category, version), []).append(
                    (holder_id, escrow_version, wrapped)
                )
        read = _Read(wrappings, escrowed)
        for customer_id, category, version in wrappings:
            names = [n for n in keys if _category_of(n) == category]
            for name in names:
                try:
                    self._data_key(read, customer_id, name, version)
                except (KeyUnavailable, IntegrityFailure):
                    continue

    def _cached(self, customer_id: str, name: str, now: float) -> bool:
        """Whether the current version of data key ``name`` opens without
        a query: cached, or a field's whose category's key is."""
        for held in {name, _category_of(name)}:
            hit = self._cache.get((customer_id, held, DATA_KEY_VERSION))
            if hit is not None and hit[1] > now:
                return True
        return False

    def _remember(
        self, cache_key: _KeyName, key: bytes, now: float, until: float | None = None
    ) -> None:
        with self._lock:
            if len(self._cache) >= _CACHE_MAX_ENTRIES:
                self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                if len(self._cache) >= _CACHE_MAX_ENTRIES:
                    self._cache.clear()
            self._cache[cache_key] = (key, now + self.cache_seconds if until is None else until)

    # -- escrow ---------------------------------------------------------
    def escrow(
        self, session: Session, *, holder_id: str, customer_id: str, keys: Collection[str]
    ) -> None:
        """Copy the customer's data keys named ``keys`` for ``holder_id``
        (a grant), wrapped under a new version of its escrow key, so that
        they open while the customer is away; any copy it held before goes
        (crypto-shredded with its key version). Only for a customer-held
        root key, which must be unlocked (the customer is here, granting):
        the server holds the others anyway. The caller commits; if the
        transaction fails, the new escrow key is left behind, opening no
        row."""
        # The versions of each category's key (a field's key has its
        # category's).
        rows = session.exec(
            select(DataKey.category, DataKey.version).where(
                col(DataKey.customer_id) == customer_id,
                col(DataKey.category).in_(sorted({_category_of(n) for n in keys})),
                col(DataKey.root_version) == CUSTOMER_ROOT,
            )
        ).all()
        names = [
            (customer_id, name, version)
            for category, version in rows
            for name in sorted(keys)
            if _category_of(name) == category
        ]
        old_versions = self.keystore.escrow_versions(holder_id)
        session.exec(delete(KeyEscrow).where(col(KeyEscrow.holder_id) == holder_id))
        if names:
            escrow_version = self.keystore.create_escrow_key(holder_id)
            now = utcnow()
            wrappings = _InSession(session)
            for name in names:
                key = self._data_key(wrappings, *name)
                session.add(
                    KeyEscrow(
                        holder_id=holder_id,
                        customer_id=customer_id,
                        category=name[1],
                        version=name[2],
                        escrow_version=escrow_version,
                        wrapped=self.keystore.escrow_wrap(
                            holder_id, escrow_version, key, escrow_aad(holder_id, *name)
                        ),
                        created_at=now,
                    )
                )
        for version in old_versions:
            self.keystore.retire_escrow_version(holder_id, version)
        if old_versions:
            self._forget_escrowed(customer_id)

    def end_escrow(self, session: Session, *, holder_id: str, customer_id: str) -> None:
        """Destroy every escrowed copy held for ``holder_id``, and its escrow
        key: what it shared no longer opens without the customer, in this
        database and in any copy of it taken from now on. Keys another live
        holder escrows still open through theirs. The caller commits; the
        key goes at once (a failed transaction leaves the grant unable to
        read while the customer is away: closed, not open)."""
        session.exec(delete(KeyEscrow).where(col(KeyEscrow.holder_id) == holder_id))
        self.keystore.destroy_escrow(holder_id)
        self._forget_escrowed(customer_id)

    def end_escrows_of(self, session: Session, customer_id: str) -> None:
        """Erasure: destroy every escrow key holding the customer's data
        keys, and their copies (the caller commits)."""
        holders = session.exec(
            select(KeyEscrow.holder_id).where(col(KeyEscrow.customer_id) == customer_id).distinct()
        ).all()
        for holder_id in holders:
            self.end_escrow(session, holder_id=holder_id, customer_id=customer_id)

    def _forget_escrowed(self, customer_id: str) -> None:
        """Drop the customer's data keys and values this process opened
        from escrow, unless their session holds the root key: the next read
        opens them again from what escrow is left. Other processes drop
        theirs within ``cache_seconds``."""
        if self._unlocked(customer_id, time.monotonic()) is None:
            self._drop_cached(customer_id)

    def seal(
        self, session: Session, *, customer_id: str, category: str, record_id: str, plaintext: bytes
    ) -> Sealed:
        """``plaintext`` sealed under the customer's current data key named
        ``category`` (a category's, or a field's: ``profile.email``)."""
        key = self._data_key(_InSession(session), customer_id, category, DATA_KEY_VERSION)
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
        failing_as: str | None = None,
    ) -> bytes:
        """The record, opened with the customer's data key named
        ``category``; one that fails its integrity check raises
        IntegrityFailure naming ``failing_as`` (the document a field is
        part of) or else ``category``."""
        key = self._data_key(_Wrappings(lambda: conn), customer_id, category, key_version)
        try:
            return aead.open_sealed(
                key, ciphertext, record_aad(customer_id, category, record_id, key_version)
            )
        except aead.SealError:
            raise record_failed(failing_as or category) from None

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
        wrapping = _Wrappings(lambda: conn)
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
                raise record_failed(category) from None
            opened.update((i, p) for (i, _), p in zip(theirs, plaintexts, strict=True))
        return [opened[i] for i in range(len(records))]

    def open_each(
        self,
        conn: Connection,
        *,
        customer_id: str,
        records: Sequence[tuple[str, str, int, bytes]],
        failing_as: str,
    ) -> list[bytes]:
        """Records of one customer, each under a data key of its own and
        given as (key name, record id, key version, ciphertext), opened as
        :meth:`open` opens one: the fields of a document. The keys come
        from the cache in one pass; those it lacks are read in one query
        (:meth:`remember_keys`), then as :meth:`open` finds them. One that
        fails its integrity check fails them all, naming ``failing_as``."""
        now = time.monotonic()
        hits = [self._cache.get((customer_id, name, version)) for name, _, version, _ in records]
        warm = [hit[0] if hit is not None and hit[1] > now else None for hit in hits]
        cold = [r[0] for r, key in zip(records, warm, strict=True) if key is None]
        if cold:
            self.remember_keys(conn, [customer_id], cold)
        wrappings = _Wrappings(lambda: conn)
        keys = [
            key or self._data_key(wrappings, customer_id, name, version)
            for key, (name, _, version, _) in zip(warm, records, strict=True)
        ]
        try:
            return aead.open_each(
                (key, ciphertext, record_aad(customer_id, name, record_id, version))
                for key, (name, record_id, version, ciphertext) in zip(keys, records, strict=True)
            )
        except aead.SealError:
            raise record_failed(failing_as) from None

    # -- erasure and rotation -------------------------------------------
    def shred(self, customer_id: str) -> None:
        """Destroy the customer's root keys: everything sealed for them, in
        this database and in every backup of it, becomes unreadable."""
        self.lock(customer_id)
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
        # A customer-held root key is the customer's: the server cannot
        # rewrap under it, and it is never in the key store to rotate.
        server_held = col(DataKey.root_version) != CUSTOMER_ROOT
        customer_ids = session.exec(select(DataKey.customer_id).where(server_held).distinct()).all()
        rewrapped = 0
        to_retire: list[tuple[str, int]] = []
        for customer_id in customer_ids:
            old_versions = self.keystore.versions(customer_id)
            new_version = self.keystore.create_root_key(customer_id)
            rows = session.exec(
                select(DataKey).where(col(DataKey.customer_id) == customer_id, server_held)
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
