"""The log's Merkle tree as the database keeps it, and its checkpoints.

Leaf hashes are in ``audit_entry``; the hashes of complete subtrees of
256, 65,536, ... leaves are in ``audit_node`` (what the tiles above level 0
hold, C2SP tlog-tiles), added by :func:`extend` once their leaves are all
there. Any subtree's hash is then a few stored nodes and at most 255 leaf
hashes per level away (:class:`StoredHashes`).

:func:`sign_checkpoint` signs the tree as it is committed: the C2SP
tlog-checkpoint body (origin, size, root) in a signed note by the server's
audit key (:func:`signer`, a key in the key store, never in the database).
The server's background work calls it every few seconds while entries
arrive (:func:`start`).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Connection, Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from consent.audit import log
from consent.audit.checkpoint import Checkpoint
from consent.audit.cosignature import CosignatureVerifier
from consent.audit.merkle import EMPTY_ROOT, consistency_proof_from, root
from consent.audit.models import AuditCheckpoint, AuditCosignature, AuditNode
from consent.audit.note import Signer, sign_note
from consent.audit.witness import Post, Refused, http_post, submit
from vrm.dbtypes import utcnow
from vrm.schedule import Every
from vrm.settings import Settings

NODE: Table = AuditNode.__table__  # type: ignore[attr-defined]
CHECKPOINT: Table = AuditCheckpoint.__table__  # type: ignore[attr-defined]
COSIGNATURE: Table = AuditCosignature.__table__  # type: ignore[attr-defined]

logger = logging.getLogger(__name__)

TILE_HEIGHT = 8
WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile, and children of a stored node

# The key store's name for the checkpoint key's seed (vrm/keys/server.py).
KEY_NAME = "audit-log"


def origin(settings: Settings) -> str:
    """The log's name: the issuer without its scheme, and ``/audit``
    (tlog-checkpoint: a schema-less URL the log is known by)."""
    parts = urlsplit(settings.issuer)
    return f"{parts.netloc}{parts.path.rstrip('/')}/audit"


def signer(settings: Settings, seed: bytes) -> Signer:
    """The checkpoint signer, named for the log."""
    return Signer(origin(settings), seed)


class StoredHashes:
    """Subtree hashes of a tree of ``size`` leaves, from the stored leaf
    hashes and nodes (the HashSource of consent/audit/merkle.py). Nodes
    not stored yet are computed from below."""

    def __init__(self, conn: Connection, size: int) -> None:
        self.conn = conn
        self.size = size

    def leaves(self, start: int, end: int) -> list[bytes]:
        entry = log.ENTRY
        rows = self.conn.execute(
            select(entry.c.leaf_hash)
            .where(entry.c.idx >= start, entry.c.idx < end)
            .order_by(entry.c.idx)
        ).scalars()
        found = list(rows)
        if len(found) != end - start:
            raise LookupError(f"the log has no leaves {start} to {end - 1}")
        return found

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        """The hashes of the level-``level`` nodes ``start`` to ``end - 1``
        (level 0: leaves), computed where not stored."""
        if level == 0:
            return self.leaves(start, end)
        rows = self.conn.execute(
            select(NODE.c.idx, NODE.c.hash)
            .where(NODE.c.level == level, NODE.c.idx >= start, NODE.c.idx < end)
            .order_by(NODE.c.idx)
        ).all()
        stored: dict[int, bytes] = {idx: hashed for idx, hashed in rows}  # noqa: C416
        return [
            stored[i] if i in stored else root(self.nodes(level - 1, i * WIDTH, (i + 1) * WIDTH))
            for i in range(start, end)
        ]

    def tile(self, level: int, index: int, width: int) -> list[bytes]:
        """The hashes of the level-``level`` tile ``index`` (C2SP
        tlog-tiles), its first ``width``: leaf hashes at level 0, stored
        nodes above, each read in one statement."""
        start = index * WIDTH
        return self.nodes(level, start, start + width)

    def subtree(self, start: int, end: int) -> bytes:
        """The hash of the subtree over leaves ``start`` to ``end - 1``: the
        leaves of a complete subtree, or the right edge of the tree (RFC
        9162 2.1.1). Its complete blocks of 256**level leaves are stored
        nodes; the hash over them and the rest's hash is the same as over
        the leaves, since RFC 9162 splits a tree at a multiple of the block
        wherever it is larger than one block."""
        if end > self.size or start >= end:
            raise LookupError(f"no subtree {start} to {end - 1} in a tree of {self.size}")
        count = end - start
        level, block = 0, 1
        while block * WIDTH <= count and start % (block * WIDTH) == 0:
            level, block = level + 1, block * WIDTH
        if level == 0:
            return root(self.leaves(start, end))
        whole = count // block
        hashes = self.nodes(level, start // block, start // block + whole)
        if whole * block < count:
            hashes.append(self.subtree(start + whole * block, end))
        return root(hashes)

    def root(self) -> bytes:
        return self.subtree(0, self.size) if self.size else EMPTY_ROOT


def extend(conn: Connection, size: int) -> int:
    """Store the node of every complete 256**level-leaf subtree of the
    first ``size`` leaves not stored yet; how many were added."""
    added = 0
    level, block = 1, WIDTH
    hashes = StoredHashes(conn, size)
    while block <= size:
        have = conn.execute(
            select(func.count()).select_from(NODE).where(NODE.c.level == level)
        ).scalar_one()
        complete = size // block
        for i in range(have, complete):
            below = hashes.nodes(level - 1, i * WIDTH, (i + 1) * WIDTH)
            conn.execute(insert(NODE).values(level=level, idx=i, hash=root(below)))
            added += 1
        level, block = level + 1, block * WIDTH
    return added


def latest(conn: Connection) -> AuditCheckpoint | None:
    row = conn.execute(select(CHECKPOINT).order_by(CHECKPOINT.c.size.desc()).limit(1)).first()
    return None if row is None else AuditCheckpoint.model_validate(row._mapping)


def checkpoint_of(conn: Connection, size: int) -> AuditCheckpoint | None:
    row = conn.execute(select(CHECKPOINT).where(CHECKPOINT.c.size == size)).first()
    return None if row is None else AuditCheckpoint.model_validate(row._mapping)


def note_with_cosignatures(conn: Connection, checkpoint: AuditCheckpoint) -> str:
    """The checkpoint's note with the signature lines of the witnesses that
    cosigned it appended (C2SP tlog-witness: a log serves them together)."""
    lines = conn.execute(
        select(COSIGNATURE.c.line)
        .where(COSIGNATURE.c.size == checkpoint.size)
        .order_by(COSIGNATURE.c.witness)
    ).scalars()
    return checkpoint.note + "".join(line + "\n" for line in lines)


def sign_checkpoint(engine: Engine, note_signer: Signer) -> AuditCheckpoint | None:
    """Sign the committed log if it grew since the latest checkpoint (or
    has none); the new checkpoint, or None. Two servers signing at once
    both try; the second's insert fails and it signs nothing."""
    with engine.connect() as conn:
        size = log.size(conn)
        last = latest(conn)
        if last is not None and last.size >= size:
            conn.rollback()
            return None
        extend(conn, size)
        tree_root = StoredHashes(conn, size).root()
        body = Checkpoint(origin=note_signer.name, size=size, root=tree_root).to_text()
        made = AuditCheckpoint(
            size=size, root=tree_root, signed_at=utcnow(), note=sign_note(body, [note_signer])
        )
        try:
            conn.execute(insert(CHECKPOINT).values(**made.model_dump()))
            conn.commit()
        except IntegrityError:
            conn.rollback()
            return None
    return made


@dataclass(frozen=True)
class WitnessAt:
    """A witness the server asks for cosignatures: where, and its key."""

    url: str
    key: CosignatureVerifier


def witnesses(settings: Settings) -> list[WitnessAt]:
    """``VRM_AUDIT_WITNESSES``: each ``<url> <verifier key>``."""
    found = []
    for item in settings.audit_witnesses:
        url, _, key = item.strip().partition(" ")
        found.append(WitnessAt(url, CosignatureVerifier.parse(key.strip())))
    return found


def collect_cosignatures(engine: Engine, asked: list[WitnessAt], post: Post) -> int:
    """Ask each witness to cosign the latest checkpoint, from the size it
    last cosigned, and keep its cosignature; how many were added. A witness
    that refuses (a history it cannot reconcile) is logged, naming it."""
    added = 0
    with engine.connect() as conn:
        last = latest(conn)
        if last is None:
            return 0
        for witness in asked:
            held = conn.execute(
                select(func.max(COSIGNATURE.c.size)).where(
                    COSIGNATURE.c.witness == witness.key.name
                )
            ).scalar_one_or_none()
            if held is not None and held >= last.size:
                continue
            try:
                signature = submit(
                    post,
                    witness.url,
                    witness.key,
                    last.note,
                    last.size,
                    held or 0,
                    lambda old, new: consistency_proof_from(StoredHashes(conn, new), old, new),
                )
            except Refused as exc:
                logger.warning(
                    "witness %s refused checkpoint %s: %s", witness.key.name, last.size, exc
                )
                continue
            except httpx.HTTPError as exc:
                logger.warning("witness %s unreachable (%s)", witness.key.name, type(exc).__name__)
                continue
            conn.execute(
                insert(COSIGNATURE).values(
                    size=last.size,
                    witness=witness.key.name,
                    line=signature.line.rstrip("\n"),
                    received_at=utcnow(),
                )
            )
            conn.commit()
            added += 1
    return added


def start(engine: Engine, settings: Settings, seed: bytes) -> Every | None:
    """Sign new checkpoints in the background while the server runs, every
    ``audit_checkpoint_seconds`` (None when that is 0), and have the
    configured witnesses cosign them."""
    if not settings.audit_checkpoint_seconds:
        return None
    note_signer = signer(settings, seed)
    asked = witnesses(settings)
    client = httpx.Client(timeout=5.0)
    post = http_post(client)

    def run(_stopping: threading.Event) -> None:
        sign_checkpoint(engine, note_signer)
        if asked:
            collect_cosignatures(engine, asked, post)

    every = Every(
        "audit checkpoints",
        run,
        interval=settings.audit_checkpoint_seconds,
        first=settings.audit_checkpoint_seconds,
    )
    every.start()
    return every
