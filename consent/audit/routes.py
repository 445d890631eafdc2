"""The log's public face: its checkpoint, its tree as C2SP tlog-tiles, the
same proofs as JSON, and the key that signs it (docs/audit.md).

All of it is hashes and signatures, public: nothing here says who did
what, but the entry bundles, which only auditors get. Everything is
read-only and, but the checkpoint, never changes once served, so it is
cacheable forever. Only what a signed checkpoint covers is served:
a tile or proof beyond it would commit to nothing.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import Connection, select
from starlette.responses import Response

from consent.audit import log, merkle, tiles, tree
from consent.audit.auditor_auth import AuditorDep
from consent.audit.models import AuditCheckpoint
from consent.audit.note import Signer
from vrm.db import SessionDep
from vrm.errors import NotFound, ValidationFailed, problems

router = APIRouter(tags=["audit"])

IMMUTABLE = "public, max-age=31536000, immutable"
# A checkpoint changes every few seconds while entries arrive.
CHECKPOINT_CACHE = "public, max-age=2"
VERIFIER_KEY_PATH = "/.well-known/vrm-audit-log-key"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _latest(conn: Connection) -> AuditCheckpoint:
    found = tree.latest(conn)
    if found is None:
        raise NotFound("The audit log has no signed checkpoint yet.")
    return found


def _signed(conn: Connection, size: int) -> AuditCheckpoint:
    checkpoint = tree.checkpoint_of(conn, size)
    if checkpoint is None:
        raise NotFound(f"No checkpoint was signed for a tree of {size} entries.")
    return checkpoint


def signer_of(request: Request) -> Signer:
    note_signer: Signer = request.app.state.audit_signer
    return note_signer


@router.get(VERIFIER_KEY_PATH, include_in_schema=False)
def verifier_key(request: Request) -> Response:
    """The checkpoint key, as a signed-note verifier key
    (``<name>+<hex key id>+<base64 key>``)."""
    return Response(
        signer_of(request).verifier_key() + "\n",
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/audit/v1/checkpoint", responses=problems(NotFound))
def checkpoint(session: SessionDep) -> Response:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a signed
    note), with the cosignatures of the witnesses that checked it."""
    conn = session.connection()
    latest = _latest(conn)
    return Response(
        tree.note_with_cosignatures(conn, latest),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


@router.get("/audit/v1/tile/entries/{path:path}", responses=problems(NotFound))
def entry_bundle(path: str, session: SessionDep, _auditor: AuditorDep) -> Response:
    """The entries of a level-0 tile (C2SP tlog-tiles entry bundle:
    ``tile/entries/<N>[.p/<W>]``), for auditors: each entry as a
    big-endian 16-bit length and its bytes."""
    try:
        index, width = tiles.parse_entries_path("tile/entries/" + path)
    except ValueError as exc:
        raise NotFound(f"No such entry bundle: {exc}") from None
    conn = session.connection()
    wanted = _covered(_latest(conn).size, 0, index, width)
    start = index * tiles.TILE_WIDTH
    entry = log.ENTRY
    bodies = conn.execute(
        select(entry.c.body)
        .where(entry.c.idx >= start, entry.c.idx < start + wanted)
        .order_by(entry.c.idx)
    ).scalars()
    return Response(
        tiles.encode_bundle(list(bodies)),
        media_type="application/octet-stream",
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


@router.get("/audit/v1/tile/{path:path}", responses=problems(NotFound, ValidationFailed))
def tile(path: str, session: SessionDep) -> Response:
    """A tile of hashes (C2SP tlog-tiles): ``tile/<L>/<N>[.p/<W>]``."""
    try:
        level, index, width = tiles.parse_tile_path("tile/" + path)
    except ValueError as exc:
        raise NotFound(f"No such tile: {exc}") from None
    conn = session.connection()
    size = _latest(conn).size
    wanted = _covered(size, level, index, width)
    hashes = tree.StoredHashes(conn, size).tile(level, index, wanted)
    return Response(
        tiles.encode_tile(hashes),
        media_type="application/octet-stream",
        headers={"Cache-Control": IMMUTABLE},
    )


def _covered(size: int, level: int, index: int, width: int | None) -> int:
    """The width asked for (None: a full tile), if the latest checkpoint's
    tree of ``size`` covers it; NotFound otherwise."""
    available = tiles.width_of(size, level, index)
    wanted = tiles.TILE_WIDTH if width is None else width
    if available < wanted:
        raise NotFound("No signed checkpoint covers that tile yet.")
    if width is None and available != tiles.TILE_WIDTH:
        raise NotFound("That tile is not full yet; ask for its partial width.")
    return wanted


class InclusionProof(BaseModel):
    index: int
    size: int
    leaf_hash: str
    proof: list[str]
    checkpoint: str


class ConsistencyProof(BaseModel):
    first: int
    second: int
    proof: list[str]
    checkpoint: str


NonNegative = Annotated[int, Query(ge=0)]


@router.get("/audit/v1/proof/inclusion", responses=problems(NotFound, ValidationFailed))
def inclusion(
    session: SessionDep, index: NonNegative, size: NonNegative | None = None
) -> InclusionProof:
    """That entry ``index`` is in the tree of a signed checkpoint (RFC 9162
    2.1.3), the latest when ``size`` is not given. Hashes in base64."""
    conn = session.connection()
    signed = _latest(conn) if size is None else _signed(conn, size)
    if index >= signed.size:
        raise ValidationFailed(f"index must be below the checkpoint's size, {signed.size}.")
    source = tree.StoredHashes(conn, signed.size)
    proof = merkle.inclusion_proof_from(source, index, signed.size)
    return InclusionProof(
        index=index,
        size=signed.size,
        leaf_hash=_b64(source.leaves(index, index + 1)[0]),
        proof=[_b64(h) for h in proof],
        checkpoint=tree.note_with_cosignatures(conn, signed),
    )


@router.get("/audit/v1/proof/consistency", responses=problems(NotFound, ValidationFailed))
def consistency(
    session: SessionDep, first: NonNegative, second: NonNegative | None = None
) -> ConsistencyProof:
    """That the tree of one signed checkpoint is a prefix of a later one's
    (RFC 9162 2.1.4), the latest when ``second`` is not given."""
    conn = session.connection()
    new = _latest(conn) if second is None else _signed(conn, second)
    if not 0 < first <= new.size:
        raise ValidationFailed(f"first must be between 1 and {new.size}.")
    proof = merkle.consistency_proof_from(tree.StoredHashes(conn, new.size), first, new.size)
    return ConsistencyProof(
        first=first,
        second=new.size,
        proof=[_b64(h) for h in proof],
        checkpoint=tree.note_with_cosignatures(conn, new),
    )
