"""An audit bundle: the log copied out for checking offline, and the check.

A bundle is a folder laid out as the log is served under ``/audit/v1``
(C2SP tlog-tiles), so a mirror of the HTTP API is a bundle too::

    verifier-key              the checkpoint key (signed-note verifier key)
    checkpoint                the latest checkpoint, with cosignatures
    since                     the checkpoint the bundle starts at (--since)
    tile/<L>/<N>[.p/<W>]      every hash tile of the checkpoint's tree
    tile/entries/<N>[.p/<W>]  the entry bundles, from the one holding
                              entry ``since`` (all without --since)

:func:`verify` needs nothing but the bundle (and, to trust it, a key or a
pinned checkpoint from elsewhere). It checks every signature, every tile
against the tiles above it and the checkpoint's root, every entry against
its leaf hash and its canonical form, a pinned checkpoint as a prefix of
the bundle's, and every access entry against the grant entries before it
(docs/audit.md#checking-a-bundle). It stops at the first failure with a
:class:`VerifyError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from consent.audit import entries, log, merkle, tiles, tree
from consent.audit.checkpoint import Checkpoint
from consent.audit.cosignature import CosignatureVerifier
from consent.audit.note import NoteError, Verifier, open_note
from consent.policy import ScopeError, field_names, parse_scope

# Called with (what, done, total) as work goes on.
Progress = Callable[[str, int, int], None]


def _quiet(_what: str, _done: int, _total: int) -> None:
    return None


class VerifyError(Exception):
    """The first thing in a bundle that does not check; the message names it."""


# -- export --------------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    size: int
    since: int
    entries: int
    tiles: int


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def export(
    engine: Engine,
    out: Path,
    *,
    verifier_key: str,
    since: int | None = None,
    progress: Progress = _quiet,
) -> Exported:
    """Write the bundle of the latest signed checkpoint into ``out`` (a new
    or empty folder); with ``since``, the entries from that checkpoint's
    size on. Raises ValueError if there is nothing to export."""
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty")
    with engine.connect() as conn:
        latest = tree.latest(conn)
        if latest is None:
            raise ValueError("the log has no signed checkpoint yet")
        size = latest.size
        first = 0
        if since is not None:
            pinned = tree.checkpoint_of(conn, since)
            if pinned is None:
                raise ValueError(f"no checkpoint was signed for a tree of {since} entries")
            first = since
            _write(out / "since", tree.note_with_cosignatures(conn, pinned).encode())
        _write(out / "verifier-key", (verifier_key + "\n").encode())
        _write(out / "checkpoint", tree.note_with_cosignatures(conn, latest).encode())
        source = tree.StoredHashes(conn, size)
        hash_tiles = list(tiles.tiles_for(size))
        for done, (level, index, width) in enumerate(hash_tiles, 1):
            path = tiles.tile_path(level, index, None if width == tiles.TILE_WIDTH else width)
            _write(out / path, tiles.encode_tile(tiles.tile_hashes(level, index, width, source)))
            progress("tiles", done, len(hash_tiles))
        bundles = [b for b in tiles.bundles_for(size) if (b[0] + 1) * tiles.TILE_WIDTH > first]
        entry = log.ENTRY
        for done, (index, width) in enumerate(bundles, 1):
            start = index * tiles.TILE_WIDTH
            bodies = conn.execute(
                entry.select()
                .with_only_columns(entry.c.body)
                .where(entry.c.idx >= start, entry.c.idx < start + width)
                .order_by(entry.c.idx)
            ).scalars()
            path = tiles.entries_path(index, None if width == tiles.TILE_WIDTH else width)
            _write(out / path, tiles.encode_bundle(list(bodies)))
            progress("entries", done, len(bundles))
    return Exported(size=size, since=first, entries=size - first, tiles=len(hash_tiles))


# -- verify --------------------------------------------------------------------


@dataclass
class Report:
    """What :func:`verify` checked."""

    origin: str = ""
    size: int = 0
    since: int = 0
    entries: int = 0
    tiles: int = 0
    signatures: int = 0
    # Witnesses whose cosignatures were checked (--witness-key), and the
    # signatures of keys not given, left unchecked.
    witnesses: int = 0
    unchecked_signatures: int = 0
    accesses: int = 0
    # Accesses under a grant given before the bundle starts: not checkable.
    unchecked_accesses: int = 0
    pinned: int | None = None
    counts: dict[str, int] = field(default_factory=dict)


def _read(bundle: Path, name: str) -> bytes:
    try:
        return (bundle / name).read_bytes()
    except OSError as exc:
        raise VerifyError(f"{name}: cannot be read ({exc.strerror})") from None


def _opened(
    note: bytes, what: str, verifier: Verifier, witnesses: Sequence[CosignatureVerifier] = ()
) -> tuple[Checkpoint, int]:
    """The checkpoint, signed by the log's key and cosigned by every one of
    ``witnesses``; and how many signatures were left unchecked."""
    try:
        opened = open_note(note, [verifier, *witnesses])
        checkpoint = Checkpoint.parse(opened.text)
    except (NoteError, ValueError) as exc:
        raise VerifyError(f"{what}: {exc}") from None
    if checkpoint.origin != verifier.name:
        raise VerifyError(f"{what}: the origin {checkpoint.origin!r} is not the key's log")
    if not any(s.key_id == verifier.key_id for s in opened.verified):
        raise VerifyError(f"{what}: not signed by the log's key")
    cosigned = {s.key_id for s in opened.verified}
    for witness in witnesses:
        if witness.key_id not in cosigned:
            raise VerifyError(f"{what}: not cosigned by witness {witness.name}")
    return checkpoint, len(opened.unverified)


def verify(
    bundle: Path,
    *,
    key: str | None = None,
    pin: bytes | None = None,
    witnesses: Sequence[str] = (),
    progress: Progress = _quiet,
) -> Report:
    """Check the bundle; the report of what was checked, or VerifyError at
    the first failure. ``key`` (a verifier key) is the trust anchor; without
    it the bundle's own key is used, and only a ``pin`` (a checkpoint note
    from elsewhere, signed by that key) ties the bundle to a log you knew."""
    report = Report()
    try:
        verifier = Verifier.parse(key or _read(bundle, "verifier-key").decode().strip())
    except (NoteError, UnicodeDecodeError) as exc:
        raise VerifyError(f"verifier key: {exc}") from None
    try:
        cosigners = [CosignatureVerifier.parse(w) for w in witnesses]
    except NoteError as exc:
        raise VerifyError(f"witness key: {exc}") from None
    latest, others = _opened(_read(bundle, "checkpoint"), "checkpoint", verifier, cosigners)
    report.origin, report.size = latest.origin, latest.size
    report.signatures = 1 + len(cosigners)
    report.witnesses, report.unchecked_signatures = len(cosigners), others
    hashes = _hash_tiles(bundle, latest.size, progress)
    report.tiles = len(hashes)
    try:
        root = tiles.root_from_tiles(latest.size, hashes)
    except ValueError as exc:
        raise VerifyError(f"tiles: {exc}") from None
    if root != latest.root:
        raise VerifyError("tiles: they do not hash to the checkpoint's root")
    if (bundle / "since").exists():
        since, _ = _opened(_read(bundle, "since"), "since", verifier)
        report.signatures += 1
        _prefix(since, latest, hashes, "since")
        report.since = since.size
    if pin is not None:
        pinned, _ = _opened(pin, "pinned checkpoint", verifier)
        _prefix(pinned, latest, hashes, "pinned checkpoint")
        report.pinned = pinned.size
    grants = Grants()
    for index, body in _entries(bundle, report.since, latest.size, hashes, progress):
        try:
            entry = entries.parse(body)
        except entries.EntryError as exc:
            raise VerifyError(f"entry {index}: {exc}") from None
        report.counts[entry["type"]] = report.counts.get(entry["type"], 0) + 1
        checked = grants.see(index, entry)
        if checked is not None:
            report.accesses += checked
            report.unchecked_accesses += 1 - checked
        report.entries += 1
    return report


def _prefix(old: Checkpoint, new: Checkpoint, hashes: tiles.Tiles, what: str) -> None:
    """``old`` must be a prefix of ``new``: the log only ever grew."""
    if old.size > new.size:
        raise VerifyError(
            f"{what}: it covers {old.size} entries and the bundle only {new.size} "
            "(the log was rolled back)"
        )
    if old.size == 0:
        return
    # The smaller tree's tiles are the first hashes of the larger one's:
    # complete subtrees never change as the log grows.
    smaller = {
        (level, index): hashes[(level, index)][: width * merkle.HASH_SIZE]
        for level, index, width in tiles.tiles_for(old.size)
    }
    try:
        root = tiles.root_from_tiles(old.size, smaller)
    except ValueError as exc:
        raise VerifyError(f"{what}: {exc}") from None
    if root != old.root:
        raise VerifyError(
            f"{what}: its {old.size} entries are not the bundle's first {old.size} "
            "(the log was rewritten)"
        )


def _hash_tiles(bundle: Path, size: int, progress: Progress) -> dict[tuple[int, int], bytes]:
    wanted = list(tiles.tiles_for(size))
    found: dict[tuple[int, int], bytes] = {}
    for done, (level, index, width) in enumerate(wanted, 1):
        path = tiles.tile_path(level, index, None if width == tiles.TILE_WIDTH else width)
        data = _read(bundle, path)
        if len(data) != width * merkle.HASH_SIZE:
            raise VerifyError(f"{path}: {len(data)} bytes, not {width} hashes")
        found[(level, index)] = data
        progress("tiles", done, len(wanted))
    return found


def _entries(
    bundle: Path, since: int, size: int, hashes: tiles.Tiles, progress: Progress
) -> Iterator[tuple[int, bytes]]:
    """Each entry from ``since`` on, once its leaf hash is the tile's."""
    bundles = [b for b in tiles.bundles_for(size) if (b[0] + 1) * tiles.TILE_WIDTH > since]
    for done, (index, width) in enumerate(bundles, 1):
        path = tiles.entries_path(index, None if width == tiles.TILE_WIDTH else width)
        try:
            bodies = tiles.decode_bundle(_read(bundle, path), width)
        except ValueError as exc:
            raise VerifyError(f"{path}: {exc}") from None
        leaves = hashes[(0, index)]
        start = index * tiles.TILE_WIDTH
        for offset, body in enumerate(bodies):
            at = offset * merkle.HASH_SIZE
            if merkle.leaf_hash(body) != leaves[at : at + merkle.HASH_SIZE]:
                raise VerifyError(
                    f"entry {start + offset}: its bytes are not the leaf the tree holds"
                )
            if start + offset >= since:
                yield start + offset, body
        progress("entries", done, len(bundles))


@dataclass
class _Grant:
    scopes: list[str]
    purpose: str
    expires_at: datetime
    ended_at: int | None = None  # the index of its revocation or expiry


class Grants:
    """Each grant as its entries left it, to check each access entry
    against: a read must fall inside the fields, purpose and period of a
    grant given before it in the log and not ended before it; a deposit
    needs ``history:write`` as well. Fields are matched by the consent
    policy's own rule (consent.policy.field_names)."""

    def __init__(self) -> None:
        self.grants: dict[str, _Grant] = {}

    def see(self, index: int, entry: dict[str, Any]) -> int | None:
        """Take in one entry: for an access, 1 if it was checked against
        its grant, 0 if the grant was given before what the log holds
        (None for every other entry). VerifyError for an access outside
        its grant."""
        kind = entry["type"]
        if kind in ("consent.granted", "consent.narrowed", "consent.shortened"):
            self.grants[entry["grant"]] = _Grant(
                scopes=list(entry["scopes"]),
                purpose=entry["purpose"],
                expires_at=_time(index, entry["expires_at"]),
            )
        elif kind in ("consent.revoked", "consent.expired"):
            grant = self.grants.get(entry["grant"])
            if grant is not None and grant.ended_at is None:
                grant.ended_at = index
        elif kind in ("data.read", "data.deposited"):
            grant = self.grants.get(entry["grant"])
            if grant is None:
                return 0
            self._check(index, entry, grant)
            return 1
        return None

    def _check(self, index: int, entry: dict[str, Any], grant: _Grant) -> None:
        what = f"entry {index} ({entry['type']} by {entry['vendor']} under grant {entry['grant']})"
        if grant.ended_at is not None:
            raise VerifyError(f"{what}: after the grant ended at entry {grant.ended_at}")
        if _time(index, entry["at"]) >= grant.expires_at:
            raise VerifyError(f"{what}: after the grant expired")
        if entry["purpose"] != grant.purpose:
            raise VerifyError(f"{what}: purpose {entry['purpose']} is not the grant's")
        try:
            accesses = [parse_scope(s) for s in grant.scopes if s != "openid"]
        except ScopeError as exc:
            raise VerifyError(f"{what}: the grant's scopes do not parse ({exc})") from None
        outside = set(entry["fields"]) - field_names(accesses)
        if outside:
            raise VerifyError(f"{what}: fields outside the grant: {', '.join(sorted(outside))}")
        if entry["type"] == "data.deposited" and "history:write" not in grant.scopes:
            raise VerifyError(f"{what}: a deposit without history:write")


def _time(index: int, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise VerifyError(f"entry {index}: {value!r} is not a time") from None
