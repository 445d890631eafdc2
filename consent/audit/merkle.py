"""RFC 9162 Merkle trees over SHA-256: tree hashes, proofs and their checks.

Section 2.1 of RFC 9162 (the same tree as RFC 6962) defines the hash of a
list of leaves, the inclusion proof that one leaf is in a tree and the
consistency proof that a tree is an append-only extension of an earlier one.
This module implements the three, both ways: the log generates proofs and
anyone holding a root checks them.

The log keeps its hashes elsewhere, so proof generation asks a
:class:`HashSource` for the subtree hashes a proof needs and never for a
whole tree; the list-based functions are the same code over leaves in memory.

Every check raises :class:`ProofError`, a ``ValueError``, and nothing else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final, Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashSource",
    "ListSource",
    "ProofError",
    "consistency_proof",
    "consistency_proof_from",
    "inclusion_proof",
    "inclusion_proof_from",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Bytes in a SHA-256 hash, the only hash this tree uses."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (RFC 9162 section 2.1.1): the root of the empty tree."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


class ProofError(ValueError):
    """A proof, root or hash that does not check out; the message says why."""


class HashSource(Protocol):
    """Where proof generation reads subtree hashes from (the log's storage)."""

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) (RFC 9162 section 2.1.1), for 0 <= start < end <= size.

        The ranges asked for are those RFC 9162's proof definitions name: a
        perfect subtree aligned on its size, or a subtree ending at the tree's
        (or the old tree's) right edge.
        """
        ...


def leaf_hash(data: bytes) -> bytes:
    """MTH({d(0)}) = SHA-256(0x00 || d(0)) (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), an interior node (RFC 9162 section 2.1.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes (RFC 9162 section 2.1.1), in O(n) hashes.

    The tree is built a level at a time: pairs are hashed left to right and a
    lone last node moves up unchanged. That is the RFC's recursion (split at
    the largest power of two below n) without the recursion: the left part of
    every split is a perfect subtree, which pairing builds the same way.

    Raises ``ValueError`` if a hash is not 32 bytes.
    """
    _require_hash_list(leaf_hashes)
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    sha256 = hashlib.sha256
    while len(level) > 1:
        pairs = len(level) // 2
        lone = level[-1] if len(level) % 2 else None
        level = [
            sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0 : 2 * pairs : 2], level[1 : 2 * pairs : 2], strict=True)
        ]
        if lone is not None:
            level.append(lone)
    return level[0]


class ListSource:
    """A :class:`HashSource` over leaf hashes held in memory."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self._leaves = leaf_hashes

    def __len__(self) -> int:
        return len(self._leaves)

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) (RFC 9162 section 2.1.1) of the leaves held."""
        if not 0 <= start < end <= len(self._leaves):
            raise ValueError(f"no subtree [{start}, {end}) in a tree of {len(self._leaves)}")
        return root(self._leaves[start:end])


def inclusion_proof_from(source: HashSource, index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) (RFC 9162 section 2.1.3.1), from a hash source.

    Walks down from the root as the RFC's recursion does, asking the source
    for the one sibling subtree at each split; the proof lists them from the
    leaf up. Raises ``ValueError`` unless 0 <= index < size.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            siblings.append(_fetch(source, middle, end))
            end = middle
        else:
            siblings.append(_fetch(source, start, middle))
            start = middle
    siblings.reverse()
    return siblings


def consistency_proof_from(source: HashSource, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 9162 section 2.1.4.1), from a hash source.

    Walks SUBPROOF(m, D[n], b) down from the root, asking the source for one
    subtree per split and, when the old tree's edge falls inside a subtree
    that is not its own root (b is false), for that subtree too. Equal sizes
    give the empty proof. Raises ``ValueError`` unless 0 < old_size <= new_size:
    the RFC defines no proof from the empty tree.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(
            f"no consistency proof from size {old_size} to size {new_size} "
            "(RFC 9162 needs 0 < old size <= new size)"
        )
    upper: list[bytes] = []
    start, end, old_end, complete = 0, new_size, old_size, True
    while old_end != end:
        middle = start + _split(end - start)
        if old_end <= middle:
            upper.append(_fetch(source, middle, end))
            end = middle
        else:
            upper.append(_fetch(source, start, middle))
            start = middle
            complete = False
    lowest = [] if complete else [_fetch(source, start, end)]
    return lowest + upper[::-1]


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) (RFC 9162 section 2.1.3.1) over leaf hashes in memory."""
    return inclusion_proof_from(ListSource(leaf_hashes), index, len(leaf_hashes))


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(old_size, D[n]) (RFC 9162 section 2.1.4.1) over leaf hashes in memory."""
    return consistency_proof_from(ListSource(leaf_hashes), old_size, len(leaf_hashes))


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 section 2.1.3.2, after checking that every hash is 32 bytes and
    that the proof has exactly the length the tree's shape gives. Returns
    nothing; raises :class:`ProofError` on any failure.
    """
    _require_hash("leaf hash", leaf_hash)
    _require_hash("root", root)
    _require_proof_hashes(proof)
    if size < 1:
        raise ProofError(f"a tree of size {size} has no leaves to prove")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    expected = _inclusion_length(index, size)
    if len(proof) != expected:
        raise ProofError(
            f"inclusion proof has {len(proof)} hashes; leaf {index} of a tree of size "
            f"{size} needs {expected}"
        )
    if _root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofError("the inclusion proof leads to a different root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (new_size, new_root) extends the tree (old_size, old_root).

    RFC 9162 section 2.1.4.2, after checking that every hash is 32 bytes and
    that the proof has exactly the length the two sizes give. Equal sizes need
    an empty proof and equal roots (the empty tree's root is SHA-256 of
    nothing); a proof from the empty tree is not defined and is rejected.
    Returns nothing; raises :class:`ProofError` on any failure.
    """
    _require_hash("old root", old_root)
    _require_hash("new root", new_root)
    _require_proof_hashes(proof)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency from size {old_size} to size {new_size}")
    if old_size == new_size:
        _verify_same_tree(old_size, old_root, new_root, proof)
        return
    if old_size == 0:
        raise ProofError("RFC 9162 defines no consistency proof from the empty tree")
    expected = _consistency_length(old_size, new_size)
    if len(proof) != expected:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes; from size {old_size} to size "
            f"{new_size} needs {expected}"
        )
    old_computed, new_computed = _roots_from_consistency(old_size, new_size, old_root, proof)
    if old_computed != old_root:
        raise ProofError("the consistency proof leads to a different old root")
    if new_computed != new_root:
        raise ProofError("the consistency proof leads to a different new root")


def _verify_same_tree(size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    if proof:
        raise ProofError(f"trees of the same size need an empty proof, not {len(proof)} hashes")
    if old_root != new_root:
        raise ProofError(f"two different roots for the tree of size {size}")
    if size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree is SHA-256 of the empty string")


def _root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2 steps 2 to 5: the root a proof leads to."""
    fn, sn, result = index, size - 1, leaf_hash
    for sibling in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            fn, sn = _shift_to_right_child(fn, sn)
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the path to the root")
    return result


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 section 2.1.4.2 steps 2 to 6: the old and new roots a proof leads to."""
    path = [old_root, *proof] if _is_power_of_two(old_size) else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_computed = new_computed = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            old_computed = node_hash(sibling, old_computed)
            new_computed = node_hash(sibling, new_computed)
            fn, sn = _shift_to_right_child(fn, sn)
        else:
            new_computed = node_hash(new_computed, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the consistency proof is shorter than the path to the root")
    return old_computed, new_computed


def _shift_to_right_child(fn: int, sn: int) -> tuple[int, int]:
    """RFC 9162: "right-shift both fn and sn equally until either LSB(fn) is set or fn is 0"."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes PATH(index, D[size]) holds: one per split on the way down."""
    length = 0
    while size > 1:
        half = _split(size)
        if index < half:
            size = half
        else:
            index, size = index - half, size - half
        length += 1
    return length


def _consistency_length(old_size: int, new_size: int) -> int:
    """How many hashes PROOF(old_size, D[new_size]) holds, 0 < old_size <= new_size."""
    length, complete = 0, True
    while old_size != new_size:
        half = _split(new_size)
        if old_size <= half:
            new_size = half
        else:
            old_size, new_size, complete = old_size - half, new_size - half, False
        length += 1
    return length if complete else length + 1


def _split(size: int) -> int:
    """k, the largest power of two strictly less than size (RFC 9162 section 2.1.1)."""
    return 1 << ((size - 1).bit_length() - 1)


def _is_power_of_two(size: int) -> bool:
    return size > 0 and size & (size - 1) == 0


def _fetch(source: HashSource, start: int, end: int) -> bytes:
    digest = source.subtree(start, end)
    if len(digest) != HASH_SIZE:
        raise ValueError(f"the hash source gave {len(digest)} bytes for [{start}, {end})")
    return digest


def _require_hash(name: str, digest: bytes) -> None:
    if len(digest) != HASH_SIZE:
        raise ProofError(f"the {name} is {len(digest)} bytes, not {HASH_SIZE}")


def _require_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, digest in enumerate(proof):
        _require_hash(f"proof hash {position}", digest)


def _require_hash_list(hashes: Sequence[bytes]) -> None:
    if all(len(digest) == HASH_SIZE for digest in hashes):
        return
    position = next(i for i, digest in enumerate(hashes) if len(digest) != HASH_SIZE)
    raise ValueError(f"leaf hash {position} is {len(hashes[position])} bytes, not {HASH_SIZE}")
