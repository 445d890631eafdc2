"""consent/audit/tiles.py against the C2SP tlog-tiles text and merkle.root.

Quoted passages are from c2sp.org/tlog-tiles. Tiles of trees around the
256 and 65,536 boundaries are computed from a hash source and must give back
merkle.root; any changed hash must be caught. Leaf hashes are SHA-256 of the
index, which is all a tree of hashes needs and cheap to make.
"""

from __future__ import annotations

import functools
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.audit.merkle import EMPTY_ROOT, ListSource, root
from consent.audit.tiles import (
    MAX_ENTRY_SIZE,
    MAX_LEVEL,
    MAX_TREE_SIZE,
    bundles_for,
    decode_bundle,
    decode_tile,
    encode_bundle,
    encode_tile,
    entries_path,
    parse_entries_path,
    parse_tile_path,
    root_from_tiles,
    tile_hashes,
    tile_path,
    tiles_for,
)

PROPERTY = settings(max_examples=200, deadline=None, database=None)
SIZES = [1, 255, 256, 257, 65535, 65536, 65537]


@functools.cache
def leaves(size: int) -> list[bytes]:
    return [hashlib.sha256(index.to_bytes(8, "big")).digest() for index in range(size)]


@functools.cache
def tree_tiles(size: int) -> dict[tuple[int, int], bytes]:
    source = ListSource(leaves(size))
    return {
        (level, index): encode_tile(tile_hashes(level, index, width, source))
        for level, index, width in tiles_for(size)
    }


def flip_bit(data: bytes, bit: int) -> bytes:
    changed = bytearray(data)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# Paths


def test_index_is_encoded_as_the_spec_example() -> None:
    # "For example, index 1234067 will be encoded as `x001/x234/067`."
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(0, 1234067, 45) == "tile/0/x001/x234/067.p/45"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"


@pytest.mark.parametrize(
    ("level", "index", "width", "path"),
    [
        (0, 0, None, "tile/0/000"),
        (0, 7, None, "tile/0/007"),
        (1, 999, None, "tile/1/999"),
        (2, 1000, 1, "tile/2/x001/000.p/1"),
        (0, 1_000_000, 255, "tile/0/x001/x000/000.p/255"),
        (MAX_LEVEL, 0, None, "tile/63/000"),
        (0, 1234067, 45, "tile/0/x001/x234/067.p/45"),
    ],
)
def test_tile_path_round_trips(level: int, index: int, width: int | None, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert parse_tile_path(path) == (level, index, width)


@pytest.mark.parametrize(
    ("index", "width", "path"),
    [
        (0, None, "tile/entries/000"),
        (256, 3, "tile/entries/256.p/3"),
        (1234067, 45, "tile/entries/x001/x234/067.p/45"),
    ],
)
def test_entries_path_round_trips(index: int, width: int | None, path: str) -> None:
    assert entries_path(index, width) == path
    assert parse_entries_path(path) == (index, width)


def test_a_width_of_256_names_the_full_tile() -> None:
    # "Full tiles MUST be exactly 256 hashes wide"; only partial tiles have ".p/<W>".
    assert tile_path(0, 5, 256) == tile_path(0, 5) == "tile/0/005"
    assert entries_path(5, 256) == "tile/entries/005"


@st.composite
def tiles(draw: st.DrawFn) -> tuple[int, int, int | None]:
    level = draw(st.integers(0, MAX_LEVEL))
    index = draw(st.integers(0, MAX_TREE_SIZE >> (8 * (level + 1))))
    width = draw(st.none() | st.integers(1, 255))
    return level, index, width


@PROPERTY
@given(tile=tiles())
def test_any_tile_path_parses_back_to_its_tile(tile: tuple[int, int, int | None]) -> None:
    assert parse_tile_path(tile_path(*tile)) == tile


@PROPERTY
@given(index=st.integers(0, MAX_TREE_SIZE >> 8), width=st.none() | st.integers(1, 255))
def test_any_entries_path_parses_back_to_its_bundle(index: int, width: int | None) -> None:
    assert parse_entries_path(entries_path(index, width)) == (index, width)


MALFORMED_TILE_PATHS = {
    "index not split in elements": "tile/0/1234067",
    "two-digit last element": "tile/0/x001/x234/67",
    "four-digit last element": "tile/0/x001/x234/0067",
    "two-digit upper element": "tile/0/x01/234/067",
    "upper element without x": "tile/0/001/234/067",
    "last element with x": "tile/0/x001/x234/x067",
    "upper-case X": "tile/0/X001/067",
    "leading zero element": "tile/0/x000/067",
    "leading zero level": "tile/00/000",
    "level over 63": "tile/64/000",
    "three-digit level": "tile/100/000",
    "negative level": "tile/-1/000",
    "plus-signed level": "tile/+1/000",
    "empty level": "tile//000",
    "no index": "tile/0",
    "empty index": "tile/0/",
    "trailing slash": "tile/0/000/",
    "leading slash": "/tile/0/000",
    "upper-case TILE": "TILE/0/000",
    "backslashes": "tile\\0\\000",
    "dot-dot element": "tile/0/../000",
    "dot-dot level": "tile/../0/000",
    "dot element": "tile/0/./000",
    "width 0": "tile/0/000.p/0",
    "width 256 written as partial": "tile/0/000.p/256",
    "width over 256": "tile/0/000.p/999",
    "width with leading zero": "tile/0/000.p/045",
    "width with four digits": "tile/0/000.p/0045",
    "empty width": "tile/0/000.p/",
    "partial mark without width": "tile/0/000.p",
    "upper-case partial mark": "tile/0/000.P/45",
    "fractional width": "tile/0/000.p/4.5",
    "negative width": "tile/0/000.p/-1",
    "partial mark twice": "tile/0/067.p/45.p/3",
    "element after the width": "tile/0/000.p/45/000",
    "partial mark on an upper element": "tile/0/x001.p/4/067",
    "non-ASCII digits": "tile/0/\u0660\u0660\u0661",
    "non-ASCII level": "tile/\u0661/000",
    "space in index": "tile/0/ 00",
    "trailing newline": "tile/0/000\n",
    "trailing space": "tile/0/000 ",
    "query string": "tile/0/000?x=1",
    "hexadecimal index": "tile/0/0x1",
    "entry bundle path": "tile/entries/000",
    "index beyond any tree size": "tile/0/x999/x999/x999/x999/x999/x999/999",
    "too many elements": "tile/0/x000/x000/x000/x000/x000/x000/x000/001",
    "high tile beyond any tree size": "tile/7/001",
    "empty": "",
}


@pytest.mark.parametrize(
    "path", list(MALFORMED_TILE_PATHS.values()), ids=list(MALFORMED_TILE_PATHS)
)
def test_malformed_tile_path_is_rejected(path: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_tile_path(path)


MALFORMED_ENTRIES_PATHS = {
    "tile path": "tile/0/000",
    "misspelt entries": "tile/entry/000",
    "no index": "tile/entries/",
    "leading zero element": "tile/entries/x000/001",
    "width 256 written as partial": "tile/entries/000.p/256",
    "width 0": "tile/entries/000.p/0",
    "dot-dot element": "tile/entries/../000",
    "index beyond any tree size": "tile/entries/x999/x999/x999/x999/x999/x999/999",
}


@pytest.mark.parametrize(
    "path", list(MALFORMED_ENTRIES_PATHS.values()), ids=list(MALFORMED_ENTRIES_PATHS)
)
def test_malformed_entries_path_is_rejected(path: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_entries_path(path)


def test_rejection_names_the_problem() -> None:
    with pytest.raises(ValueError, match="full and has no .p suffix"):
        parse_tile_path("tile/0/000.p/256")
    with pytest.raises(ValueError, match="starts with a zero element"):
        parse_tile_path("tile/0/x000/067")
    with pytest.raises(ValueError, match="level 64 is over 63"):
        parse_tile_path("tile/64/000")


def test_a_very_long_path_is_cut_short_in_the_message() -> None:
    with pytest.raises(ValueError, match="more than 7 elements") as raised:
        parse_tile_path("tile/0/" + "x001/" * 10_000 + "000")
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize(
    ("level", "index", "width"),
    [(-1, 0, None), (64, 0, None), (0, -1, None), (0, 0, 0), (0, 0, 257), (0, 1 << 60, None)],
)
def test_tile_path_refuses_a_tile_that_cannot_exist(
    level: int, index: int, width: int | None
) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        tile_path(level, index, width)


# Which tiles a tree has


def test_tiles_of_a_tree_of_70000_are_the_spec_example() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one
    # partial level 0 tile of width 112, one full level 1 tile, one partial
    # level 1 tile of width 17, and one partial level 2 tile of width 1."
    expected = [(0, index, 256) for index in range(273)]
    expected += [(0, 273, 112), (1, 0, 256), (1, 1, 17), (2, 0, 1)]
    assert list(tiles_for(70_000)) == expected


def test_tiles_of_a_tree_of_256_are_the_spec_example() -> None:
    # "a tree of size 256 will be represented by a full level 0 tile and a
    # partial level 1 tile of width 1."
    assert list(tiles_for(256)) == [(0, 0, 256), (1, 0, 1)]


def test_an_empty_tree_has_no_tiles() -> None:
    # "Empty tiles MUST NOT be served."
    assert list(tiles_for(0)) == []
    assert root_from_tiles(0, {}) == EMPTY_ROOT


@PROPERTY
@given(size=st.integers(0, 300_000))
def test_each_level_holds_floor_of_size_over_256_to_the_level_hashes(size: int) -> None:
    # "The partial tile at level *l* for a tree of size *s* has
    # `floor(s / 256**l) mod 256` entries."
    rows: dict[int, list[tuple[int, int]]] = {}
    for level, index, width in tiles_for(size):
        rows.setdefault(level, []).append((index, width))
    assert list(rows) == [level for level in range(8) if size >= 256**level]
    for level, row in rows.items():
        assert [index for index, _ in row] == list(range(len(row)))
        assert all(width == 256 for _, width in row[:-1])
        assert row[-1][1] == (size // 256**level % 256 or 256)
        assert sum(width for _, width in row) == size // 256**level


def test_bundles_are_the_level_0_tiles() -> None:
    assert list(bundles_for(70_000)) == [(i, w) for lvl, i, w in tiles_for(70_000) if lvl == 0]
    assert list(bundles_for(0)) == []


def test_tiles_for_refuses_a_size_beyond_a_uint64() -> None:
    with pytest.raises(ValueError, match="tree size"):
        list(tiles_for(MAX_TREE_SIZE + 1))


# Tile hashes and the root


@pytest.mark.parametrize("size", SIZES)
def test_tiles_give_back_the_tree_root(size: int) -> None:
    assert root_from_tiles(size, tree_tiles(size)) == root(leaves(size))


@pytest.mark.parametrize("size", SIZES)
def test_tile_hashes_are_the_roots_of_the_leaves_they_cover(size: int) -> None:
    # "MTH(D[(n * 256 + i) * 256**l : (n * 256 + i + 1) * 256**l])"
    all_leaves = leaves(size)
    for (level, index), data in tree_tiles(size).items():
        span = 256**level
        for i, digest in enumerate(decode_tile(data, len(data) // 32)):
            start = (index * 256 + i) * span
            assert digest == root(all_leaves[start : start + span])


def test_level_0_tile_holds_the_leaf_hashes() -> None:
    # 'At "level 0" tiles contain leaf hashes.'
    assert decode_tile(tree_tiles(257)[(0, 1)], 1) == leaves(257)[256:]
    assert decode_tile(tree_tiles(257)[(0, 0)]) == leaves(257)[:256]


# (level, index, hash position) of one hash per kind of tile in a tree of 65,537:
# a level-0 full tile (checked by level 1), a level-1 full tile (checked by
# level 2), the level-2 partial tile (checked against level 1).
CHECKED_HASHES = {
    "level 0 full tile, first hash": (0, 0, 0),
    "level 0 full tile, last hash": (0, 255, 255),
    "level 1 full tile": (1, 0, 77),
    "level 2 partial tile": (2, 0, 0),
}


@pytest.mark.parametrize("where", list(CHECKED_HASHES.values()), ids=list(CHECKED_HASHES))
def test_a_changed_hash_in_a_full_or_upper_tile_is_caught(where: tuple[int, int, int]) -> None:
    level, index, position = where
    changed = dict(tree_tiles(65537))
    changed[(level, index)] = flip_bit(changed[(level, index)], position * 256 + 3)
    with pytest.raises(ValueError, match="is not the root of tile"):
        root_from_tiles(65537, changed)


def test_a_changed_hash_in_the_rightmost_level_0_tile_changes_the_root() -> None:
    # A partial tile "MUST NOT be hashed into a tile at the level above", so
    # nothing but the root can disagree with it.
    changed = dict(tree_tiles(65537))
    changed[(0, 256)] = flip_bit(changed[(0, 256)], 0)
    assert root_from_tiles(65537, changed) != root(leaves(65537))


def test_a_missing_tile_is_named() -> None:
    tiles = dict(tree_tiles(257))
    del tiles[(1, 0)]
    with pytest.raises(ValueError, match=r"tile tile/1/000\.p/1 is missing"):
        root_from_tiles(257, tiles)


def test_a_tile_of_the_wrong_length_is_rejected() -> None:
    tiles = dict(tree_tiles(257))
    tiles[(0, 0)] = tiles[(0, 0)][:-1]
    with pytest.raises(ValueError, match="tile tile/0/000: a tile of width 256 is 8192 bytes"):
        root_from_tiles(257, tiles)


def test_a_full_tile_may_stand_in_for_its_partial_tile() -> None:
    # Clients "MAY fetch the full tile in parallel as a fallback in case the
    # partial tile is not available anymore."
    tiles = dict(tree_tiles(257))
    tiles[(0, 1)] = tree_tiles(65536)[(0, 1)]
    assert root_from_tiles(257, tiles) == root(leaves(257))


def test_encode_tile_refuses_short_hashes_and_empty_tiles() -> None:
    with pytest.raises(ValueError, match="tile hash 1 is 31 bytes"):
        encode_tile([b"a" * 32, b"b" * 31])
    with pytest.raises(ValueError, match="1 to 256"):
        encode_tile([])


# Entry bundles


def test_bundle_is_uint16_length_prefixed_entries() -> None:
    # "Entry bundles are sequences of big-endian uint16 length-prefixed log entries."
    assert encode_bundle([b"ab", b"", b"\xff" * 300]) == (
        b"\x00\x02ab" + b"\x00\x00" + b"\x01\x2c" + b"\xff" * 300
    )
    assert decode_bundle(b"\x00\x02ab\x00\x00") == [b"ab", b""]


@PROPERTY
@given(entries=st.lists(st.binary(max_size=300), min_size=1, max_size=256))
def test_any_bundle_decodes_to_its_entries(entries: list[bytes]) -> None:
    data = encode_bundle(entries)
    assert decode_bundle(data) == entries
    assert decode_bundle(data, len(entries)) == entries


def test_bundle_holds_a_full_tile_of_the_largest_entries() -> None:
    entries = [bytes([n]) * MAX_ENTRY_SIZE for n in range(256)]
    assert decode_bundle(encode_bundle(entries), 256) == entries


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "1 to 256"),
        ([b""] * 257, "1 to 256"),
        ([b"x" * (MAX_ENTRY_SIZE + 1)], "entry 0 is 65536 bytes"),
    ],
    ids=["no entries", "257 entries", "entry over 65535 bytes"],
)
def test_encode_bundle_refuses_what_the_format_cannot_hold(
    entries: list[bytes], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_bundle(entries)


MALFORMED_BUNDLES = {
    "empty": (b"", None, "at least one entry"),
    "cut inside a length": (b"\x00\x01a\x00", None, "entry 1 is cut off inside its length"),
    "cut inside an entry": (b"\x00\x05abc", None, "5 bytes said, 3 left"),
    "257 entries": (b"\x00\x00" * 257, None, "after the bundle's 256 entries"),
    "fewer entries than the width": (b"\x00\x01a", 2, "holds 1 entries, not 2"),
    "trailing bytes after the width": (b"\x00\x01a\x00\x00", 1, "2 bytes after"),
    "trailing zero byte": (b"\x00\x01a\x00", 1, "1 bytes after"),
}


@pytest.mark.parametrize(
    ("data", "width", "message"), list(MALFORMED_BUNDLES.values()), ids=list(MALFORMED_BUNDLES)
)
def test_malformed_bundle_is_rejected(data: bytes, width: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_bundle(data, width)
