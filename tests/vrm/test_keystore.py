"""The file key store under concurrent first use and after a crash."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from vrm.crypto import aead, keystore
from vrm.crypto.keystore import FileKeyStore, KeyMissing


def _race_first_use(folder: Path, processes: int) -> list[bytes | Exception]:
    """Separate store objects stand for separate processes (two `vrm init`
    at once): they share nothing but the folder, and all create and read
    the same new key at once."""
    stores = [FileKeyStore(folder) for _ in range(processes)]
    stores[0].init()
    barrier = threading.Barrier(processes)
    got: list[bytes | Exception] = []

    def first_use(store: FileKeyStore) -> None:
        barrier.wait()
        try:
            store.create_server_key("blind-index")
            got.append(store.server_key("blind-index"))
        except Exception as exc:
            got.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return got


def test_concurrent_creation_of_a_server_key_gives_every_caller_the_same_key(
    tmp_path: Path,
) -> None:
    # Before keys were written to a temporary file and linked into place, a
    # reader could see the new key file while it was still empty.
    for round_ in range(20):
        folder = tmp_path / f"round{round_}"
        got = _race_first_use(folder, processes=8)
        assert all(isinstance(k, bytes) for k in got), got
        assert len(set(got)) == 1
        key = got[0]
        assert isinstance(key, bytes)
        assert len(key) == aead.KEY_BYTES
        assert FileKeyStore(folder).server_key("blind-index") == key


def test_destroying_a_customer_also_removes_a_temporary_file_left_by_a_crash(
    tmp_path: Path,
) -> None:
    store = FileKeyStore(tmp_path)
    store.init()
    store.create_root_key("cust1")
    folder = tmp_path / "customers" / "cust1"
    leftover = folder / ".2.key.0123456789abcdef.tmp"
    leftover.write_bytes(os.urandom(aead.KEY_BYTES))
    store.destroy_customer("cust1")
    assert not folder.exists()
    with pytest.raises(KeyMissing):
        store.current_version("cust1")


def test_key_identifiers_that_could_leave_the_key_folder_are_refused(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path)
    store.init()
    for bad in ("../server", "a/b", "", "x" * 65, "dot.dot"):
        with pytest.raises(ValueError, match="key identifiers"):
            store.create_root_key(bad)
        with pytest.raises(ValueError, match="key identifiers"):
            store.server_key(bad)
        with pytest.raises(ValueError, match="key identifiers"):
            store.create_server_key(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers", "server"]


def test_a_cached_root_key_is_read_again_once_its_time_is_up(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, cache_seconds=0.2)
    store.init()
    store.create_root_key("cust1")
    aad = aead.associated_data("test")
    wrapped = store.wrap("cust1", 1, b"k" * 32, aad)
    # Another process destroys the key: this store has it cached a while.
    FileKeyStore(tmp_path).destroy_customer("cust1")
    assert store.unwrap("cust1", 1, wrapped, aad) == b"k" * 32
    time.sleep(0.3)
    with pytest.raises(KeyMissing, match="root key 1 of customer cust1 is missing"):
        store.unwrap("cust1", 1, wrapped, aad)


def test_the_root_key_cache_stays_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keystore, "_CACHE_MAX_ENTRIES", 3)
    store = FileKeyStore(tmp_path)
    store.init()
    for n in range(10):
        store.create_root_key(f"cust{n}")
        store.wrap(f"cust{n}", 1, b"k" * 32, b"")
        assert len(store._customers._cache) <= 3


def test_a_key_caught_mid_destruction_reads_as_missing_and_is_not_cached(tmp_path: Path) -> None:
    # _destroy_file overwrites a key with zeros, then unlinks it: a reader in
    # between read the zeros as the key, failed the integrity check (a 500
    # that says tampering) and cached the zeros.
    store = FileKeyStore(tmp_path, cache_seconds=60)
    store.init()
    store.create_root_key("cust1")
    aad = aead.associated_data("test")
    wrapped = FileKeyStore(tmp_path).wrap("cust1", 1, b"k" * 32, aad)
    path = tmp_path / "customers" / "cust1" / "1.key"
    key = path.read_bytes()
    path.write_bytes(bytes(aead.KEY_BYTES))
    with pytest.raises(KeyMissing, match="root key 1 of customer cust1 is being destroyed"):
        store.unwrap("cust1", 1, wrapped, aad)
    # Nothing was cached: the key back in place opens again at once.
    path.write_bytes(key)
    assert store.unwrap("cust1", 1, wrapped, aad) == b"k" * 32
