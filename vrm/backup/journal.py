"""The erasure journal: which customers were erased, kept outside backups.

Erasure destroys a customer's root keys (crypto-shredding), so their
ciphertext in every database backup is unreadable as long as the key store
backups that still hold those keys are gone. A backup made by
``vrm backup create`` seals the database and the key store together, so
restoring it would bring an erased customer back. The journal closes that
gap: every erasure appends the customer's id here first, and
``vrm backup restore`` erases again everyone in it (vrm/backup/restore.py).

It holds customer ids and times only, never a personal value: one line
``<UTC time> <customer id>\\n`` per erasure, appended with ``O_APPEND``
(a single small write, so lines from several processes never interleave)
and fsynced before the keys are destroyed. A line without its newline was
torn by a crash before the write returned, so before the erasure went on:
readers ignore it, and the next append closes it with ``#torn``, which no
customer id holds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vrm.dbtypes import utcnow
from vrm.settings import Settings

# The ids the key store accepts (vrm/crypto/keystore.py).
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TORN = b"#torn\n"


class ErasureJournal:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def of(cls, settings: Settings) -> ErasureJournal:
        return cls(settings.erasure_journal_resolved)

    def exists(self) -> bool:
        return self.path.is_file()

    def touch(self) -> None:
        """Create the journal, empty, if it does not exist yet."""
        self._append(b"")

    def record(self, customer_id: str) -> None:
        """Note the erasure on disk; call before destroying anything, so a
        failure here leaves the customer as they were."""
        if not _ID.fullmatch(customer_id):
            raise ValueError("not a customer id")
        stamp = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        self._append(f"{stamp} {customer_id}\n".encode())

    def _append(self, line: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if line and size and os.pread(fd, 1, size - 1) != b"\n":
                line = _TORN + line
            if line:
                os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

    def customer_ids(self) -> set[str]:
        """Everyone erased; raises FileNotFoundError if there is no journal."""
        ids: set[str] = set()
        text = self.path.read_bytes().decode("ascii", errors="replace")
        for line in text.split("\n")[:-1]:  # the last piece has no newline
            fields = line.split(" ")
            if len(fields) == 2 and _ID.fullmatch(fields[1]):
                ids.add(fields[1])
        return ids


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
