"""Where customers' root keys live.

A root key never leaves its key store: callers ask the store to wrap and
unwrap data keys. That is the shape of a KMS or Vault transit engine, so one
can implement :class:`KeyStore` later without touching the callers.

The default :class:`FileKeyStore` keeps one file per customer and version
under ``<key_dir>/customers/<customer_id>/<version>.key`` (mode 0600, folders
0700) and server-wide keys (the blind-index key, the session-token key) under
``<key_dir>/server/``. Keep the key directory off the database's disk, and
back the two up together only with ``vrm backup``, whose restore replays the
erasure journal (vrm/backup/): crypto-shredding works only if a deleted root
key never comes back.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Protocol

from vrm.crypto import aead

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Bound on cached root keys, as on the vault's data keys.
_CACHE_MAX_ENTRIES = 50_000


class KeyMissing(Exception):
    """The key asked for does not exist (never created, or destroyed)."""


class KeyUnreadable(KeyMissing):
    """A key file is there but gives no key: not a regular file, not
    readable, or not the size of a key. Never replaced by a new key: the
    data sealed under the old one would be lost."""


class KeyStore(Protocol):
    def create_root_key(self, customer_id: str) -> int:
        """Create a new root key version for the customer and return it."""

    def current_version(self, customer_id: str) -> int:
        """The newest root key version; raises KeyMissing if there is none."""

    def versions(self, customer_id: str) -> list[int]: ...

    def wrap(self, customer_id: str, version: int, data_key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, customer_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Raises KeyMissing for an unknown version, SealError if tampered."""

    def retire_version(self, customer_id: str, version: int) -> None:
        """Destroy one old version once nothing is wrapped under it."""

    def destroy_customer(self, customer_id: str) -> None:
        """Destroy every root key of the customer (crypto-shredding)."""

    def root_key(self, customer_id: str, version: int) -> bytes:
        """The root key itself: only to hand it to its customer when their
        keys move from the server to them (vrm/keys/custody.py)."""

    def create_escrow_key(self, holder_id: str) -> int:
        """Create a new version of the escrow key of a holder (a grant)."""

    def escrow_versions(self, holder_id: str) -> list[int]: ...

    def escrow_wrap(self, holder_id: str, version: int, data_key: bytes, aad: bytes) -> bytes: ...

    def escrow_unwrap(self, holder_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        """Raises KeyMissing for a destroyed escrow key, SealError if tampered."""

    def retire_escrow_version(self, holder_id: str, version: int) -> None: ...

    def destroy_escrow(self, holder_id: str) -> None:
        """Destroy every version of the holder's escrow key."""

    def server_key(self, name: str) -> bytes:
        """A server-wide secret key; raises KeyMissing if it is not there.
        Never created here: only ``vrm init`` creates keys."""

    def create_server_key(self, name: str) -> bool:
        """Create the server key if it does not exist; True if created."""


def _check_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError("key identifiers are 1-64 letters, digits, '-' or '_'")
    return value


def _read_key(path: Path, what: str) -> bytes:
    """The key in ``path``; KeyMissing or KeyUnreadable with a message that
    names the key (never its bytes)."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        raise KeyMissing(f"{what} is missing ({path})") from None
    except OSError as exc:
        # A directory in its place, no permission, a folder that is a file.
        reason = exc.strerror or exc.__class__.__name__
        raise KeyUnreadable(f"{what} cannot be read ({path}: {reason})") from None
    if len(key) != aead.KEY_BYTES:
        raise KeyUnreadable(f"{what} is damaged ({path}: {len(key)} bytes, not {aead.KEY_BYTES})")
    if key == bytes(aead.KEY_BYTES):
        # Overwritten by _destroy_file, not yet unlinked: destroyed, not a
        # key (opening with it would look like tampering, and be cached).
        raise KeyMissing(f"{what} is being destroyed ({path})")
    return key


class _KeyFolder:
    """Versioned keys of one kind of owner, one folder per owner under
    ``root`` (``customers/`` for root keys, ``escrow/`` for grants'
    escrow keys). Keys are cached for ``cache_seconds``, then read again: a
    key destroyed by another process (an erasure, a rotation, a revocation)
    stops working here within that bound (docs/keys.md, Caching)."""

    def __init__(self, root: Path, what: str, cache_seconds: float) -> None:
        self.root = root
        # How messages name a key: "root key 2 of customer <id>".
        self.what = what
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        # (owner id, version) -> (key, monotonic expiry)
        self._cache: dict[tuple[str, int], tuple[bytes, float]] = {}

    def folder(self, owner_id: str) -> Path:
        return self.root / _check_id(owner_id)

    def versions(self, owner_id: str) -> list[int]:
        folder = self.folder(owner_id)
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.key") if p.stem.isdigit())

    def create(self, owner_id: str) -> int:
        with self._lock:
            existing = self.versions(owner_id)
            version = (existing[-1] + 1) if existing else 1
            while not _write_new(self.folder(owner_id) / f"{version}.key", aead.new_key()):
                version += 1
            return version

    def key(self, owner_id: str, version: int) -> bytes:
        now = time.monotonic()
        cached = self._cache.get((owner_id, version))
        if cached is not None and cached[1] > now:
            return cached[0]
        path = self.folder(owner_id) / f"{int(version)}.key"
        key = _read_key(path, f"{self.what.format(int(version))} {owner_id}")
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) >= _CACHE_MAX_ENTRIES:
                    self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
                    if len(self._cache) >= _CACHE_MAX_ENTRIES:
                        self._cache.clear()
                self._cache[(owner_id, version)] = (key, now + self.cache_seconds)
        return key

    def retire(self, owner_id: str, version: int) -> None:
        with self._lock:
            self._cache.pop((owner_id, version), None)
            _destroy_file(self.folder(owner_id) / f"{int(version)}.key")

    def destroy(self, owner_id: str) -> None:
        folder = self.folder(owner_id)
        with self._lock:
            for key in [k for k in self._cache if k[0] == owner_id]:
                del self._cache[key]
            if folder.is_dir():
                # Every file, not only *.key: a temporary file left by a
                # crash mid-write holds key material too.
                for path in folder.iterdir():
                    _destroy_file(path)
                folder.rmdir()


def _write_new(path: Path, secret: bytes) -> bool:
    """Create path with mode 0600 holding secret; False if it exists.

    The secret goes to a temporary file first and is hard-linked into
    place, so another thread or process never reads a key file that is
    still empty (concurrent first use of a server key did)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink()


def _destroy_file(path: Path) -> None:
    # Overwriting first is best effort (journaling and SSDs may keep old
    # blocks); the unlink is what the guarantee rests on.
    try:
        with open(path, "r+b") as f:
            f.write(b"\0" * aead.KEY_BYTES)
            f.flush()
            os.fsync(f.fileno())
        path.unlink()
    except FileNotFoundError:
        pass


class FileKeyStore:
    """Root keys and escrow keys are cached for ``cache_seconds``
    (:class:`_KeyFolder`). Server keys are read once and kept: they never
    change while the server runs."""

    def __init__(self, root: Path, *, cache_seconds: float = 60.0) -> None:
        self.root = root
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._customers = _KeyFolder(root / "customers", "root key {} of customer", cache_seconds)
        self._escrow = _KeyFolder(root / "escrow", "escrow key {} of grant", cache_seconds)
        self._server: dict[str, bytes] = {}

    # -- layout ---------------------------------------------------------
    def init(self) -> None:
        for folder in (self.root, self.root / "customers", self.root / "server"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)

    # -- root keys ------------------------------------------------------
    def versions(self, customer_id: str) -> list[int]:
        return self._customers.versions(customer_id)

    def current_version(self, customer_id: str) -> int:
        found = self.versions(customer_id)
        if not found:
            raise KeyMissing("no root key for this customer")
        return found[-1]

    def create_root_key(self, customer_id: str) -> int:
        return self._customers.create(customer_id)

    def root_key(self, customer_id: str, version: int) -> bytes:
        return self._customers.key(customer_id, version)

    def wrap(self, customer_id: str, version: int, data_key: bytes, aad: bytes) -> bytes:
        return aead.seal(self._customers.key(customer_id, version), data_key, aad)

    def unwrap(self, customer_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        return aead.open_sealed(self._customers.key(customer_id, version), wrapped, aad)

    def retire_version(self, customer_id: str, version: int) -> None:
        self._customers.retire(customer_id, version)

    def destroy_customer(self, customer_id: str) -> None:
        self._customers.destroy(customer_id)

    # -- escrow keys ----------------------------------------------------
    def create_escrow_key(self, holder_id: str) -> int:
        return self._escrow.create(holder_id)

    def escrow_versions(self, holder_id: str) -> list[int]:
        return self._escrow.versions(holder_id)

    def escrow_wrap(self, holder_id: str, version: int, data_key: bytes, aad: bytes) -> bytes:
        return aead.seal(self._escrow.key(holder_id, version), data_key, aad)

    def escrow_unwrap(self, holder_id: str, version: int, wrapped: bytes, aad: bytes) -> bytes:
        return aead.open_sealed(self._escrow.key(holder_id, version), wrapped, aad)

    def retire_escrow_version(self, holder_id: str, version: int) -> None:
        self._escrow.retire(holder_id, version)

    def destroy_escrow(self, holder_id: str) -> None:
        self._escrow.destroy(holder_id)

    # -- server keys ----------------------------------------------------
    def _server_path(self, name: str) -> Path:
        return self.root / "server" / f"{_check_id(name)}.key"

    def server_key(self, name: str) -> bytes:
        # The cache first: this runs several times on every vendor call, and
        # building and checking the path cost more than the HMAC it keys.
        cached = self._server.get(name)
        if cached is not None:
            return cached
        key = _read_key(self._server_path(name), f"server key {name}")
        with self._lock:
            self._server[name] = key
        return key

    def create_server_key(self, name: str) -> bool:
        return _write_new(self._server_path(name), os.urandom(aead.KEY_BYTES))
