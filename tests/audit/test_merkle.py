"""consent/audit/merkle.py against transparency-dev's vectors and RFC 9162's definitions.

Every JSON vector under tests/audit/vectors/merkle (copied from
transparency-dev/merkle, Apache-2.0, see its README.md and LICENSE) is one
test case: those with ``wantErr: false`` must verify and the others must
raise ProofError. Property tests then check, for trees of up to 300 leaves,
that every proof the module generates verifies, that any flipped bit is
caught, and that ``root`` agrees with the RFC's recursive definition written
out naively below.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.audit.merkle import (
    EMPTY_ROOT,
    ListSource,
    ProofError,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "vectors" / "merkle"

# The one vector whose verdict we knowingly do not follow. Its roots are the
# 12-byte placeholder "don't care 2"; transparency-dev accepts any equal
# roots for equal sizes, while this module rejects every hash that is not 32
# bytes long. The vector's intent (equal sizes, equal roots, empty proof) is
# checked with real hashes in test_equal_sizes_with_equal_roots_and_no_proof_verify.
REJECTED_FOR_HASH_LENGTH = {"consistency/additional/sizes-are-equal-one-and-proof-is-empty"}

MAX_LEAVES = 300
LEAVES = [leaf_hash(b"entry %d" % number) for number in range(MAX_LEAVES)]
PROPERTY = settings(max_examples=200, deadline=None, database=None)

# RFC 6962's reference tree (the inputs of Certificate Transparency's own
# Merkle tests); inclusion/1/happy-path.json gives its root.
RFC6962_INPUTS = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    bytes(range(0x60, 0x70)),
]


def naive_root(hashes: list[bytes]) -> bytes:
    """MTH exactly as RFC 9162 section 2.1.1 writes it, recursion and all."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    split = 1
    while split * 2 < len(hashes):
        split *= 2
    left, right = naive_root(hashes[:split]), naive_root(hashes[split:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@functools.cache
def tree_root(size: int) -> bytes:
    return root(LEAVES[:size])


def flip(digest: bytes, bit: int) -> bytes:
    changed = bytearray(digest)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


def vector_id(path: Path) -> str:
    return path.relative_to(VECTORS).with_suffix("").as_posix()


def vectors(kind: str) -> list[Any]:
    return [
        pytest.param(path, id=vector_id(path)) for path in sorted((VECTORS / kind).rglob("*.json"))
    ]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def b64_list(texts: list[str] | None) -> list[bytes]:
    return [b64(text) for text in texts or []]


def test_every_vector_file_is_in_the_repository() -> None:
    assert len(vectors("inclusion")) == 98
    assert len(vectors("consistency")) == 98
    assert (VECTORS / "LICENSE").is_file()


def check_inclusion(case: dict[str, Any]) -> None:
    verify_inclusion(
        b64(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        b64_list(case["proof"]),
        b64(case["root"]),
    )


def check_consistency(case: dict[str, Any]) -> None:
    verify_consistency(
        case["size1"],
        case["size2"],
        b64(case["root1"]),
        b64(case["root2"]),
        b64_list(case["proof"]),
    )


@pytest.mark.parametrize("path", vectors("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    case = load(path)
    if case["wantErr"]:
        with pytest.raises(ProofError):
            check_inclusion(case)
    else:
        check_inclusion(case)


@pytest.mark.parametrize("path", vectors("consistency"))
def test_consistency_vector(path: Path) -> None:
    case = load(path)
    if vector_id(path) in REJECTED_FOR_HASH_LENGTH:
        assert not case["wantErr"]
        with pytest.raises(ProofError, match="12 bytes, not 32"):
            check_consistency(case)
    elif case["wantErr"]:
        with pytest.raises(ProofError):
            check_consistency(case)
    else:
        check_consistency(case)


def test_leaf_and_empty_hashes_are_the_rfc_6962_known_answers() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    left, right = b"L" * 32, b"R" * 32
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


def test_root_of_the_rfc_6962_reference_tree_matches_the_vectors() -> None:
    happy = load(VECTORS / "inclusion" / "1" / "happy-path.json")
    assert happy["treeSize"] == len(RFC6962_INPUTS)
    assert root([leaf_hash(data) for data in RFC6962_INPUTS]) == b64(happy["root"])


def test_root_of_no_leaves_is_the_empty_root() -> None:
    assert root([]) == EMPTY_ROOT


def test_root_rejects_a_hash_that_is_not_32_bytes() -> None:
    with pytest.raises(ValueError, match="leaf hash 2 is 31 bytes"):
        root([LEAVES[0], LEAVES[1], LEAVES[2][:31]])


@PROPERTY
@given(size=st.integers(0, MAX_LEAVES))
def test_root_matches_the_rfc_recursive_definition(size: int) -> None:
    assert root(LEAVES[:size]) == naive_root(LEAVES[:size])


@PROPERTY
@given(hashes=st.lists(st.binary(min_size=32, max_size=32), max_size=40))
def test_root_of_arbitrary_hashes_matches_the_rfc_recursive_definition(
    hashes: list[bytes],
) -> None:
    assert root(hashes) == naive_root(hashes)


@pytest.mark.parametrize("size", range(1, 41))
def test_every_proof_in_small_trees_verifies(size: int) -> None:
    leaves = LEAVES[:size]
    full_root = root(leaves)
    for index in range(size):
        verify_inclusion(leaves[index], index, size, inclusion_proof(index, leaves), full_root)
    for old_size in range(1, size + 1):
        proof = consistency_proof(old_size, leaves)
        verify_consistency(old_size, size, root(leaves[:old_size]), full_root, proof)


@st.composite
def leaf_in_tree(draw: st.DrawFn, min_size: int = 1) -> tuple[int, int]:
    size = draw(st.integers(min_size, MAX_LEAVES))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn, min_gap: int = 0) -> tuple[int, int]:
    new_size = draw(st.integers(1 + min_gap, MAX_LEAVES))
    return draw(st.integers(1, new_size - min_gap)), new_size


@PROPERTY
@given(leaf=leaf_in_tree())
def test_every_inclusion_proof_verifies(leaf: tuple[int, int]) -> None:
    index, size = leaf
    proof = inclusion_proof(index, LEAVES[:size])
    verify_inclusion(LEAVES[index], index, size, proof, tree_root(size))


@PROPERTY
@given(sizes=two_sizes())
def test_every_consistency_proof_verifies(sizes: tuple[int, int]) -> None:
    old_size, new_size = sizes
    proof = consistency_proof(old_size, LEAVES[:new_size])
    verify_consistency(old_size, new_size, tree_root(old_size), tree_root(new_size), proof)


@PROPERTY
@given(leaf=leaf_in_tree(min_size=2), data=st.data())
def test_inclusion_proof_with_a_flipped_bit_is_rejected(
    leaf: tuple[int, int], data: st.DataObject
) -> None:
    index, size = leaf
    proof = inclusion_proof(index, LEAVES[:size])
    position = data.draw(st.integers(0, len(proof) - 1))
    proof[position] = flip(proof[position], data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], index, size, proof, tree_root(size))


@PROPERTY
@given(leaf=leaf_in_tree(), bit=st.integers(0, 255), flip_root=st.booleans())
def test_inclusion_with_a_flipped_bit_in_the_root_or_leaf_is_rejected(
    leaf: tuple[int, int], bit: int, flip_root: bool
) -> None:
    index, size = leaf
    proof = inclusion_proof(index, LEAVES[:size])
    claimed_root, leaf_value = tree_root(size), LEAVES[index]
    if flip_root:
        claimed_root = flip(claimed_root, bit)
    else:
        leaf_value = flip(leaf_value, bit)
    with pytest.raises(ProofError):
        verify_inclusion(leaf_value, index, size, proof, claimed_root)


@PROPERTY
@given(sizes=two_sizes(min_gap=1), data=st.data())
def test_consistency_proof_with_a_flipped_bit_is_rejected(
    sizes: tuple[int, int], data: st.DataObject
) -> None:
    old_size, new_size = sizes
    proof = consistency_proof(old_size, LEAVES[:new_size])
    position = data.draw(st.integers(0, len(proof) - 1))
    proof[position] = flip(proof[position], data.draw(st.integers(0, 255)))
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, tree_root(old_size), tree_root(new_size), proof)


@PROPERTY
@given(sizes=two_sizes(), bit=st.integers(0, 255), flip_old=st.booleans())
def test_consistency_with_a_flipped_bit_in_either_root_is_rejected(
    sizes: tuple[int, int], bit: int, flip_old: bool
) -> None:
    old_size, new_size = sizes
    proof = consistency_proof(old_size, LEAVES[:new_size])
    old_root, new_root = tree_root(old_size), tree_root(new_size)
    if flip_old:
        old_root = flip(old_root, bit)
    else:
        new_root = flip(new_root, bit)
    with pytest.raises(ProofError):
        verify_consistency(old_size, new_size, old_root, new_root, proof)


@PROPERTY
@given(leaf=leaf_in_tree(min_size=2), data=st.data())
def test_inclusion_proof_for_another_tree_size_is_rejected(
    leaf: tuple[int, int], data: st.DataObject
) -> None:
    index, size = leaf
    other = data.draw(st.integers(index + 1, MAX_LEAVES).filter(lambda n: n != size))
    proof = inclusion_proof(index, LEAVES[:other])
    with pytest.raises(ProofError):
        verify_inclusion(LEAVES[index], index, size, proof, tree_root(size))


class CountingSource:
    """A hash source that records each range asked of it."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.inner = ListSource(leaves)
        self.asked: list[tuple[int, int]] = []

    def subtree(self, start: int, end: int) -> bytes:
        self.asked.append((start, end))
        return self.inner.subtree(start, end)


def is_rfc_subtree(start: int, end: int, edges: set[int]) -> bool:
    """A perfect subtree aligned on its size, or a subtree ending at a tree's edge."""
    size = end - start
    perfect = size & (size - 1) == 0 and start % size == 0
    return perfect or end in edges


@PROPERTY
@given(leaf=leaf_in_tree())
def test_inclusion_proof_asks_the_source_once_per_proof_hash(leaf: tuple[int, int]) -> None:
    index, size = leaf
    source = CountingSource(LEAVES[:size])
    proof = inclusion_proof_from(source, index, size)
    assert proof == inclusion_proof(index, LEAVES[:size])
    assert len(source.asked) == len(proof)
    assert all(is_rfc_subtree(start, end, {size}) for start, end in source.asked)


@PROPERTY
@given(sizes=two_sizes())
def test_consistency_proof_asks_the_source_once_per_proof_hash(sizes: tuple[int, int]) -> None:
    old_size, new_size = sizes
    source = CountingSource(LEAVES[:new_size])
    proof = consistency_proof_from(source, old_size, new_size)
    assert proof == consistency_proof(old_size, LEAVES[:new_size])
    assert len(source.asked) == len(proof)
    assert all(is_rfc_subtree(start, end, {old_size, new_size}) for start, end in source.asked)


def test_equal_sizes_with_equal_roots_and_no_proof_verify() -> None:
    verify_consistency(5, 5, tree_root(5), tree_root(5), [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])


def test_empty_tree_with_any_root_but_the_empty_root_is_rejected() -> None:
    with pytest.raises(ProofError, match="empty tree"):
        verify_consistency(0, 0, LEAVES[0], LEAVES[0], [])


def test_consistency_from_the_empty_tree_is_rejected() -> None:
    with pytest.raises(ProofError, match="from the empty tree"):
        verify_consistency(0, 3, EMPTY_ROOT, tree_root(3), [])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof(0, LEAVES[:3])


def test_consistency_to_a_smaller_tree_is_rejected() -> None:
    with pytest.raises(ProofError, match="from size 4 to size 3"):
        verify_consistency(4, 3, tree_root(4), tree_root(3), [])
    with pytest.raises(ValueError, match="no consistency proof"):
        consistency_proof_from(ListSource(LEAVES[:4]), 4, 3)


def test_consistency_proof_of_the_wrong_length_says_how_long_it_should_be() -> None:
    proof = consistency_proof(3, LEAVES[:7])
    with pytest.raises(ProofError, match=f"has {len(proof) + 1} hashes.*needs {len(proof)}"):
        verify_consistency(3, 7, tree_root(3), tree_root(7), [*proof, LEAVES[0]])


def test_inclusion_proof_of_the_wrong_length_says_how_long_it_should_be() -> None:
    proof = inclusion_proof(5, LEAVES[:8])
    with pytest.raises(ProofError, match="has 2 hashes.*needs 3"):
        verify_inclusion(LEAVES[5], 5, 8, proof[:2], tree_root(8))


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (8, 8, "leaf index 8 is not in a tree of size 8"),
        (-1, 8, "leaf index -1 is not in a tree of size 8"),
        (0, 0, "a tree of size 0 has no leaves"),
    ],
)
def test_inclusion_at_an_index_outside_the_tree_is_rejected(
    index: int, size: int, message: str
) -> None:
    with pytest.raises(ProofError, match=message):
        verify_inclusion(LEAVES[0], index, size, [], tree_root(8))


def test_inclusion_proof_of_an_index_outside_the_tree_is_not_generated() -> None:
    with pytest.raises(ValueError, match="leaf index 3 is not in a tree of size 3"):
        inclusion_proof(3, LEAVES[:3])


@pytest.mark.parametrize("length", [0, 20, 31, 33, 64])
def test_hashes_that_are_not_32_bytes_are_rejected(length: int) -> None:
    proof = inclusion_proof(1, LEAVES[:4])
    good_root = tree_root(4)
    odd = b"\x07" * length
    with pytest.raises(ProofError, match="leaf hash"):
        verify_inclusion(odd, 1, 4, proof, good_root)
    with pytest.raises(ProofError, match="root"):
        verify_inclusion(LEAVES[1], 1, 4, proof, odd)
    with pytest.raises(ProofError, match="proof hash 1"):
        verify_inclusion(LEAVES[1], 1, 4, [proof[0], odd], good_root)
    with pytest.raises(ProofError, match="old root"):
        verify_consistency(2, 2, odd, odd, [])
    with pytest.raises(ProofError, match="proof hash 0"):
        verify_consistency(2, 4, tree_root(2), good_root, [odd])


def test_a_hash_source_giving_a_short_hash_is_refused() -> None:
    class ShortSource:
        def subtree(self, start: int, end: int) -> bytes:
            return b"short"

    with pytest.raises(ValueError, match="gave 5 bytes"):
        inclusion_proof_from(ShortSource(), 0, 2)


def test_list_source_refuses_a_range_outside_its_leaves() -> None:
    with pytest.raises(ValueError, match=r"no subtree \[2, 5\)"):
        ListSource(LEAVES[:4]).subtree(2, 5)
