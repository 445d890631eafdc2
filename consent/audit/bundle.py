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

import gc
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
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
            _write(out / path, tiles.encode_tile(source.tile(level, index, width)))
            progress("tiles", done, len(hash_tiles))
        bundles = _bundles_from(size, first)
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


def _bundles_from(size: int, since: int) -> list[tuple[int, int]]:
    """The entry bundles (index, width) of a tree of ``size`` that hold
    entry ``since`` or later."""
    return [b for b in tiles.bundles_for(size) if (b[0] + 1) * tiles.TILE_WIDTH > since]


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
    workers: int | None = None,
) -> Report:
    """Check the bundle; the report of what was checked, or VerifyError at
    the first failure. ``key`` (a verifier key) is the trust anchor; without
    it the bundle's own key is used, and only a ``pin`` (a checkpoint note
    from elsewhere, signed by that key) ties the bundle to a log you knew.
    The entries are checked by ``workers`` processes (by default one per
    CPU from :data:`PARALLEL_FROM` entries on, else this one)."""
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
    since: Checkpoint | None = None
    if (bundle / "since").exists():
        since, _ = _opened(_read(bundle, "since"), "since", verifier)
        report.signatures += 1
        report.since = since.size
    pinned: Checkpoint | None = None
    if pin is not None:
        pinned, _ = _opened(pin, "pinned checkpoint", verifier)
        report.pinned = pinned.size

    def tree_checks() -> None:
        try:
            root = tiles.root_from_tiles(latest.size, hashes)
        except ValueError as exc:
            raise VerifyError(f"tiles: {exc}") from None
        if root != latest.root:
            raise VerifyError("tiles: they do not hash to the checkpoint's root")
        if since is not None:
            _prefix(since, latest, hashes, "since")
        if pinned is not None:
            _prefix(pinned, latest, hashes, "pinned checkpoint")

    checked = _check_entries(
        bundle, report.since, latest.size, hashes, progress, workers, tree_checks
    )
    report.counts, report.entries = checked.counts, checked.entries
    report.accesses, report.unchecked_accesses = checked.accesses, checked.unchecked_accesses
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


# Below this many entries a bundle is checked in this process: starting
# workers costs more than it saves.
PARALLEL_FROM = 65536
# What the grant check needs of an entry, small enough to send between
# processes: ("given", grant, scopes, purpose, expires_at), ("ended", grant)
# or ("access", grant, type, vendor, at, purpose, fields).
Fact = tuple[Any, ...]
GIVEN = frozenset({"consent.granted", "consent.narrowed", "consent.shortened"})
ENDED = frozenset({"consent.revoked", "consent.expired"})
ACCESS = frozenset({"data.read", "data.deposited"})


def fact_of(entry: dict[str, Any]) -> Fact | None:
    kind = entry["type"]
    if kind in ACCESS:
        return (
            "access",
            entry["grant"],
            kind,
            entry["vendor"],
            entry["at"],
            entry["purpose"],
            tuple(entry["fields"]),
        )
    if kind in GIVEN:
        return (
            "given",
            entry["grant"],
            tuple(entry["scopes"]),
            entry["purpose"],
            entry["expires_at"],
        )
    if kind in ENDED:
        return ("ended", entry["grant"])
    return None


@dataclass
class Checked:
    """What checking some entries found."""

    counts: dict[str, int] = field(default_factory=dict)
    entries: int = 0
    accesses: int = 0
    unchecked_accesses: int = 0

    def add(self, other: Checked) -> None:
        for kind, n in other.counts.items():
            self.counts[kind] = self.counts.get(kind, 0) + n
        self.entries += other.entries
        self.accesses += other.accesses
        self.unchecked_accesses += other.unchecked_accesses


# The consent entries' type in their canonical bytes. Inside a JSON string
# every quote is escaped, so these bytes are never part of a value; a match
# is parsed and its type confirmed.
_CONSENT_TYPE = b'"type":"consent.'
Item = tuple[int, int, bytes]  # an entry bundle's index, width, level-0 hashes


def _bodies(folder: Path, index: int, width: int) -> list[bytes]:
    path = tiles.entries_path(index, None if width == tiles.TILE_WIDTH else width)
    try:
        return tiles.decode_bundle(_read(folder, path), width)
    except ValueError as exc:
        raise VerifyError(f"{path}: {exc}") from None


def consent_facts(folder: Path, items: list[Item]) -> list[tuple[int, Fact]]:
    """The consent entries of the bundles, in order, found by their bytes
    and then parsed: what every worker needs to know each grant's state at
    any entry. Their leaves are checked with the rest (:func:`check_bundles`)."""
    found: list[tuple[int, Fact]] = []
    for index, width, _leaves in items:
        path = tiles.entries_path(index, None if width == tiles.TILE_WIDTH else width)
        if _CONSENT_TYPE not in _read(folder, path):
            continue
        for offset, body in enumerate(_bodies(folder, index, width)):
            if _CONSENT_TYPE in body:
                try:
                    fact = fact_of(entries.parse(body))
                except entries.EntryError:
                    continue  # reported, with its index, by check_bundles
                if fact is not None:
                    found.append((index * tiles.TILE_WIDTH + offset, fact))
    return found


def check_bundles(
    folder: str, items: list[Item], since: int, consents: list[tuple[int, Fact]]
) -> Checked:
    """Entry bundles ``items``: each entry's leaf hash must be the tile's,
    the entry canonical, and each read or deposit from ``since`` on inside
    its grant as the consent entries before it (``consents``, all of them
    in order) left it. Runs in a worker process, or in this one."""
    with _no_cycles():
        return _check_bundles(Path(folder), items, since, consents)


@contextmanager
def _no_cycles() -> Iterator[None]:
    """The cyclic garbage collector off while entries are checked: they
    make a million acyclic objects, which full collections walk again and
    again (a quarter of the time, measured)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _check_bundles(
    folder: Path, items: list[Item], since: int, consents: list[tuple[int, Fact]]
) -> Checked:
    done = Checked()
    counts = done.counts
    parse = entries.parse
    grants = Grants()
    first = items[0][0] * tiles.TILE_WIDTH if items else 0
    # The grants as the entries before this range left them.
    given = iter(consents)
    pending = next(given, None)
    while pending is not None and pending[0] < first:
        grants.take(*pending)
        pending = next(given, None)
    for index, width, leaves in items:
        start = index * tiles.TILE_WIDTH
        # merkle.leaf_hash, inline: a million calls.
        for offset, body in enumerate(_bodies(folder, index, width)):
            position = start + offset
            at = offset * merkle.HASH_SIZE
            if sha256(b"\x00" + body).digest() != leaves[at : at + merkle.HASH_SIZE]:
                raise VerifyError(f"entry {position}: its bytes are not the leaf the tree holds")
            try:
                entry = parse(body)
            except entries.EntryError as exc:
                raise VerifyError(f"entry {position}: {exc}") from None
            kind = entry["type"]
            if kind in GIVEN or kind in ENDED:
                if pending is None or pending[0] != position:
                    raise VerifyError(f"entry {position}: a consent entry not found as such")
                grants.take(*pending)
                pending = next(given, None)
            if position < since:
                continue
            counts[kind] = counts.get(kind, 0) + 1
            done.entries += 1
            if kind in ACCESS:
                seen = grants.take(position, fact_of(entry))  # type: ignore[arg-type]
                done.accesses += seen or 0
                done.unchecked_accesses += 1 - (seen or 0)
    return done


def _check_entries(
    bundle: Path,
    since: int,
    size: int,
    hashes: tiles.Tiles,
    progress: Progress,
    workers: int | None,
    meanwhile: Callable[[], None],
) -> Checked:
    """Every entry bundle from ``since`` on, by ``workers`` processes (see
    :func:`verify`); the grants' consent entries first, from all of them.
    ``meanwhile`` (the tree's checks) runs first in this process, or while
    the workers work."""
    consents = consent_facts(
        bundle, [(index, width, b"") for index, width in tiles.bundles_for(size)]
    )
    items = [(index, width, hashes[(0, index)]) for index, width in _bundles_from(size, since)]
    if workers is None:
        workers = (os.cpu_count() or 1) if size - since >= PARALLEL_FROM else 1
    # Several chunks per worker, so that the workers finish together.
    per = max(1, min(len(items) // (workers * 4) or 1, 1024))
    chunks = [items[i : i + per] for i in range(0, len(items), per)]
    total = Checked()
    if workers <= 1:
        meanwhile()
        for done, chunk in enumerate(chunks, 1):
            total.add(check_bundles(str(bundle), chunk, since, consents))
            progress("entries", done, len(chunks))
        return total
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        running = [
            pool.submit(check_bundles, str(bundle), chunk, since, consents) for chunk in chunks
        ]
        try:
            meanwhile()
        except VerifyError:
            pool.shutdown(cancel_futures=True)
            raise
        for done, future in enumerate(running, 1):
            total.add(future.result())
            progress("entries", done, len(chunks))
    return total


@dataclass
class _Grant:
    scopes: list[str]
    purpose: str
    expires_at: datetime
    # What its scopes let a vendor read (consent.policy.field_names), or the
    # reason they do not parse.
    fields: frozenset[str] | str
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
        fact = fact_of(entry)
        return None if fact is None else self.take(index, fact)

    def take(self, index: int, fact: Fact) -> int | None:
        """:meth:`see`, for an entry's :func:`fact_of`."""
        kind, grant_id = fact[0], fact[1]
        if kind == "access":
            grant = self.grants.get(grant_id)
            if grant is None:
                return 0
            problem = _outside(index, fact, grant)
            if problem is not None:
                raise VerifyError(
                    f"entry {index} ({fact[2]} by {fact[3]} under grant {grant_id}): {problem}"
                )
            return 1
        if kind == "given":
            scopes = list(fact[2])
            self.grants[grant_id] = _Grant(
                scopes=scopes,
                purpose=fact[3],
                expires_at=_time(index, fact[4]),
                fields=_readable(scopes),
            )
        else:
            ended = self.grants.get(grant_id)
            if ended is not None and ended.ended_at is None:
                ended.ended_at = index
        return None


def _outside(index: int, fact: Fact, grant: _Grant) -> str | None:
    """How the access falls outside its grant, or None."""
    _, _, kind, _, at, purpose, fields = fact
    if grant.ended_at is not None:
        return f"after the grant ended at entry {grant.ended_at}"
    if _time(index, at) >= grant.expires_at:
        return "after the grant expired"
    if purpose != grant.purpose:
        return f"purpose {purpose} is not the grant's"
    if isinstance(grant.fields, str):
        return f"the grant's scopes do not parse ({grant.fields})"
    if not grant.fields.issuperset(fields):
        outside = set(fields) - grant.fields
        return f"fields outside the grant: {', '.join(sorted(outside))}"
    if kind == "data.deposited" and "history:write" not in grant.scopes:
        return "a deposit without history:write"
    return None


def _readable(scopes: list[str]) -> frozenset[str] | str:
    try:
        return frozenset(field_names(parse_scope(s) for s in scopes if s != "openid"))
    except ScopeError as exc:
        return str(exc)


def _time(index: int, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise VerifyError(f"entry {index}: {value!r} is not a time") from None
