"""``vrm backup create`` and ``vrm backup restore``: the database and the
key store together, sealed, and erasures replayed on the way back.

A backup folder::

    manifest.json     format, id, time, database kind and schema revision,
                      counts, and the key check (vrm/backup/sealing.py)
    database.sealed   the SQLite file, or pg_dump's SQL
    keys.sealed       every file of the key store, and the erasure journal's
                      ids as they were when the backup was made

The database is copied first, then the key store: a root key the copy needs
is created before the row that needs it commits, so it is in the key
store by then, unless it was destroyed since. Destroyed by an erasure, it
is in the journal, and the restore erases that customer anyway; destroyed
by a key rotation that finished in between, the backup starts again (up to
three times). A key still missing after that is a lost key (see
``vrm keys check``): the backup is made, and says how many.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vrm.backup import database, replay
from vrm.backup.journal import ErasureJournal
from vrm.backup.sealing import (
    FORMAT,
    BackupError,
    key_check,
    open_stream,
    seal_stream,
    verify_key,
)
from vrm.dbtypes import utcnow
from vrm.keys.custody import CUSTOMER_ROOT
from vrm.settings import Settings

MANIFEST, DATABASE, KEYS = "manifest.json", "database.sealed", "keys.sealed"
ATTEMPTS = 3


@dataclass
class Created:
    customers: int
    root_keys: int
    missing_root_keys: int


@dataclass
class Restored:
    created_at: str
    erased_again: int


@contextmanager
def _scratch(settings: Settings) -> Iterator[Path]:
    """A private folder for plaintext on the data folder's disk, never in
    the backup folder, which may be on another machine."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".backup-", dir=settings.data_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _read_key_store(settings: Settings) -> dict[str, bytes]:
    """Every file of the key store by relative path, but temporary files
    (dot files) and the journal, should the operator keep it in there."""
    root = settings.key_dir_resolved
    journal = settings.erasure_journal_resolved.resolve()
    found: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        relative = path.relative_to(root)
        if not path.is_file() or path.resolve() == journal:
            continue
        if any(part.startswith(".") for part in relative.parts):
            continue
        try:
            found[relative.as_posix()] = path.read_bytes()
        except FileNotFoundError:
            continue  # destroyed while we looked: the check below decides
    return found


def _root_keys(files: dict[str, bytes]) -> set[tuple[str, int]]:
    # FileKeyStore's layout: customers/<customer id>/<version>.key
    found = set()
    for name in files:
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "customers" and parts[2].removesuffix(".key").isdigit():
            found.add((parts[1], int(parts[2].removesuffix(".key"))))
    return found


def create(settings: Settings, key: bytes, folder: Path) -> Created:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} is not an empty folder: give a new one for each backup")
    journal = ErasureJournal.of(settings)
    journal.touch()  # from now on a restore can insist on finding it
    with _scratch(settings) as scratch:
        plain_db = scratch / "database"
        for _attempt in range(ATTEMPTS):
            plain_db.unlink(missing_ok=True)
            snapshot = database.dump(settings, plain_db)
            files = _read_key_store(settings)
            erased = journal.customer_ids()
            # A customer-held root key (version 0) is never in the key store.
            missing = {
                ref
                for ref in snapshot.key_refs - _root_keys(files)
                if ref[0] not in erased and ref[1] != CUSTOMER_ROOT
            }
            if not missing:
                break
        customers = len({ref[0] for ref in snapshot.key_refs})
        root_keys = len(_root_keys(files))
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        backup_id = uuid.uuid4().hex
        manifest = {
            "format": FORMAT,
            "id": backup_id,
            "created_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "database": snapshot.kind,
            "schema_revision": snapshot.revision,
            "customers": customers,
            "root_keys": root_keys,
            "missing_root_keys": len(missing),
            "key_check": key_check(key, backup_id),
        }
        text = json.dumps(manifest, indent=2).encode() + b"\n"
        digest = hashlib.sha256(text).hexdigest()
        keys_doc = {
            "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
            "erased": sorted(erased),
        }
        _seal_file(key, plain_db, folder / DATABASE, digest)
        plain_keys = scratch / "keys"
        plain_keys.write_bytes(json.dumps(keys_doc).encode())
        _seal_file(key, plain_keys, folder / KEYS, digest)
        # Last: a folder without a manifest is a backup that did not finish.
        _write_synced(folder / MANIFEST, text)
    return Created(customers, root_keys, len(missing))


def _seal_file(key: bytes, source: Path, target: Path, digest: str) -> None:
    with open(source, "rb") as src, open(target, "xb") as dst:
        seal_stream(key, src, dst, manifest_digest=digest, name=target.name)
        dst.flush()
        os.fsync(dst.fileno())


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_manifest(folder: Path) -> tuple[dict[str, Any], str]:
    try:
        text = (folder / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BackupError(
            f"no {MANIFEST} in {folder}: not a backup, or one that did not finish"
        ) from None
    try:
        manifest = json.loads(text)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{folder / MANIFEST} is not a {FORMAT} manifest")
    return manifest, hashlib.sha256(text).hexdigest()


def open_file(key: bytes, folder: Path, name: str, digest: str, target: Path) -> None:
    """Open one sealed file of a backup into target (plaintext)."""
    try:
        with open(folder / name, "rb") as src, open(target, "wb") as dst:
            open_stream(key, src, dst, manifest_digest=digest, name=name)
    except FileNotFoundError:
        raise BackupError(f"the backup is incomplete: {name} is missing") from None


def restore(
    settings: Settings, key: bytes, folder: Path, *, force: bool, without_journal: bool
) -> Restored:
    manifest, digest = read_manifest(folder)
    verify_key(key, str(manifest.get("id")), str(manifest.get("key_check")))
    if manifest.get("database") != database.kind(settings):
        raise BackupError(
            f"this backup holds a {manifest.get('database')} database, "
            f"and VRM_DATABASE_URL names {database.kind(settings)}"
        )
    journal = ErasureJournal.of(settings)
    if not journal.exists() and not without_journal:
        raise BackupError(
            f"no erasure journal at {journal.path}: set VRM_ERASURE_JOURNAL to a copy of it, "
            "or pass --without-journal if it is truly lost (customers erased since the "
            "backup would come back)"
        )
    if not force and (_has_customer_keys(settings) or database.holds_data(settings)):
        raise BackupError(
            f"the store in {settings.data_dir} holds data: pass --force to replace it"
        )
    with _scratch(settings) as scratch:
        # Everything is opened and checked before anything is replaced.
        open_file(key, folder, KEYS, digest, scratch / "keys")
        keys_doc = json.loads((scratch / "keys").read_bytes())
        open_file(key, folder, DATABASE, digest, scratch / "database")
        staged = _staging_folder(settings)
        try:
            _stage_key_store(staged, keys_doc["files"])
            database.load(settings, scratch / "database")
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        _swap_key_store(settings, staged)
    erased = set(keys_doc["erased"]) | (journal.customer_ids() if journal.exists() else set())
    count = replay.erase_again(settings, erased)
    return Restored(str(manifest.get("created_at")), count)


def _has_customer_keys(settings: Settings) -> bool:
    customers = settings.key_dir_resolved / "customers"
    return customers.is_dir() and any(customers.iterdir())


def _staging_folder(settings: Settings) -> Path:
    """A folder beside the key store, so that renaming it into place is one
    step on one file system."""
    root = settings.key_dir_resolved
    root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{root.name}-restore-", dir=root.parent))


def _stage_key_store(staged: Path, files: dict[str, str]) -> None:
    for name, data in files.items():
        parts = Path(name).parts
        if Path(name).is_absolute() or any(p in ("", ".", "..") for p in parts):
            raise BackupError("the backup's key store names a path outside it")
        path = staged / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64decode(data))
            f.flush()
            os.fsync(f.fileno())
    for folder in (staged, staged / "customers", staged / "server"):
        folder.mkdir(mode=0o700, exist_ok=True)


def _swap_key_store(settings: Settings, staged: Path) -> None:
    root = settings.key_dir_resolved
    journal = settings.erasure_journal_resolved
    if journal.is_file() and journal.resolve().is_relative_to(root.resolve()):
        # Kept in the key store by the operator: it goes on, not back.
        kept = staged / journal.resolve().relative_to(root.resolve())
        kept.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copy2(journal, kept)
    old = root.with_name(f".{root.name}-replaced-{uuid.uuid4().hex[:8]}")
    if root.exists():
        root.rename(old)
    staged.rename(root)
    if old.exists():
        shutil.rmtree(old)
