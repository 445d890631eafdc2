"""C2SP tlog-tiles: the log's Merkle tree and entries as static, cacheable files.

A tile (c2sp.org/tlog-tiles, "Merkle Tree") is up to 256 consecutive hashes
of one level of the RFC 9162 tree: a level-L tile holds the hashes of
subtrees of 256**L leaves, so it stands for a subtree of height 8 whose
own leaves are those hashes. The rightmost tile of each level is *partial*
(1 to 255 hashes) and is never hashed into the level above. Entry bundles
("Log entries") hold the entries behind a level-0 tile, each prefixed with
its length as a big-endian uint16.

This module names tiles and bundles (and parses those names strictly, since
they arrive as URL paths), says which exist for a tree size, computes a
tile from a :class:`~consent.audit.merkle.HashSource`, recomputes a root
from tiles for a verifier, and encodes and decodes bundles. Everything
malformed raises ``ValueError`` with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Final

from consent.audit.merkle import EMPTY_ROOT, HASH_SIZE, HashSource, node_hash, root

__all__ = [
    "MAX_ENTRY_SIZE",
    "MAX_LEVEL",
    "MAX_TREE_SIZE",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "Tiles",
    "bundles_for",
    "decode_bundle",
    "decode_tile",
    "encode_bundle",
    "encode_tile",
    "entries_path",
    "parse_entries_path",
    "parse_tile_path",
    "root_from_tiles",
    "tile_hashes",
    "tile_path",
    "tiles_for",
]

TILE_HEIGHT: Final = 8
"""Tree levels a tile spans."""

TILE_WIDTH: Final = 1 << TILE_HEIGHT
"""Hashes in a full tile (and entries in a full bundle): 256."""

MAX_LEVEL: Final = 63
"""Highest tile level a path may name (tlog-tiles: "between 0 and 63")."""

MAX_TREE_SIZE: Final = (1 << 64) - 1
"""Largest tree size (RFC 9162's tree_size is a uint64); no tile starts beyond it."""

MAX_ENTRY_SIZE: Final = 0xFFFF
"""Largest entry a bundle can hold behind its uint16 length."""

Tiles = Mapping[tuple[int, int], bytes]
"""Tile data keyed by (level, index), as a verifier fetched it."""

_TILE_PREFIX: Final = "tile/"
_ENTRIES_PREFIX: Final = "tile/entries/"
_PARTIAL: Final = ".p"
_DIGITS_PER_ELEMENT: Final = 3
# 2**64 has 20 decimal digits: seven three-digit elements are enough for any index.
_MAX_INDEX_ELEMENTS: Final = 7


def tile_path(level: int, index: int, width: int | None = None) -> str:
    """``tile/<L>/<N>[.p/<W>]`` for a tile (tlog-tiles, "Merkle Tree").

    ``width`` None or 256 names the full tile, 1 to 255 a partial one.
    Raises ``ValueError`` for a level outside 0 to 63, a negative index, a
    tile starting beyond the largest tree size, or a width outside 1 to 256.
    """
    _require_level(level)
    _require_index(level, index)
    return f"{_TILE_PREFIX}{level}/{_encode_index(index)}{_width_suffix(width)}"


def entries_path(index: int, width: int | None = None) -> str:
    """``tile/entries/<N>[.p/<W>]`` for an entry bundle (tlog-tiles, "Log entries")."""
    _require_index(0, index)
    return f"{_ENTRIES_PREFIX}{_encode_index(index)}{_width_suffix(width)}"


def parse_tile_path(path: str) -> tuple[int, int, int | None]:
    """(level, index, width) from ``tile/<L>/<N>[.p/<W>]``; width None for a full tile.

    Accepts only the one spelling tlog-tiles ("Merkle Tree") gives each tile:
    a level of 0 to 63 without leading zeroes, three-digit index elements with
    ``x`` on all but the last and no leading ``x000``, and a width of 1 to 255
    without leading zeroes. Anything else raises ``ValueError``.
    """
    if not path.startswith(_TILE_PREFIX):
        raise ValueError(f"{_show(path)} does not start with {_TILE_PREFIX!r}")
    if path.startswith(_ENTRIES_PREFIX):
        raise ValueError(f"{_show(path)} names an entry bundle, not a tile")
    level_text, _, rest = path[len(_TILE_PREFIX) :].partition("/")
    level = _parse_level(level_text, path)
    index, width = _parse_index_and_width(rest, path)
    _require_index(level, index)
    return level, index, width


def parse_entries_path(path: str) -> tuple[int, int | None]:
    """(index, width) from ``tile/entries/<N>[.p/<W>]`` (tlog-tiles, "Log entries").

    The index and width follow the same strict rules as :func:`parse_tile_path`.
    """
    if not path.startswith(_ENTRIES_PREFIX):
        raise ValueError(f"{_show(path)} does not start with {_ENTRIES_PREFIX!r}")
    index, width = _parse_index_and_width(path[len(_ENTRIES_PREFIX) :], path)
    _require_index(0, index)
    return index, width


def tiles_for(size: int) -> Iterator[tuple[int, int, int]]:
    """Every tile of a tree of ``size`` leaves as (level, index, width), level by level.

    tlog-tiles, "Partial Tiles": level L holds floor(size / 256**L) hashes, in
    full tiles (width 256) and, if that count is not a multiple of 256, one
    partial tile of the remainder. Empty tiles do not exist.
    """
    _require_size(size)
    level = 0
    while hashes := size >> (TILE_HEIGHT * level):
        full, partial = divmod(hashes, TILE_WIDTH)
        for index in range(full):
            yield level, index, TILE_WIDTH
        if partial:
            yield level, full, partial
        level += 1


def bundles_for(size: int) -> Iterator[tuple[int, int]]:
    """Every entry bundle of a tree of ``size`` as (index, width), as level-0 tiles."""
    for level, index, width in tiles_for(size):
        if level > 0:
            return
        yield index, width


def tile_hashes(level: int, index: int, width: int, source: HashSource) -> list[bytes]:
    """The ``width`` hashes of tile (``level``, ``index``), from a hash source.

    tlog-tiles, "Merkle Tree": hash i is MTH(D[(n*256 + i) * 256**L :
    (n*256 + i + 1) * 256**L]), the subtree of 256**L leaves it stands for.
    """
    _require_level(level)
    _require_index(level, index)
    _require_width(width)
    span = 1 << (TILE_HEIGHT * level)
    first = index * TILE_WIDTH
    return [source.subtree((first + i) * span, (first + i + 1) * span) for i in range(width)]


def encode_tile(hashes: Sequence[bytes]) -> bytes:
    """A tile's bytes: its 1 to 256 hashes concatenated (tlog-tiles, "Merkle Tree")."""
    _require_width(len(hashes))
    for position, digest in enumerate(hashes):
        if len(digest) != HASH_SIZE:
            raise ValueError(f"tile hash {position} is {len(digest)} bytes, not {HASH_SIZE}")
    return b"".join(hashes)


def decode_tile(data: bytes, width: int = TILE_WIDTH) -> list[bytes]:
    """The ``width`` hashes of a tile's bytes; raises ``ValueError`` on any other length."""
    _require_width(width)
    if len(data) != width * HASH_SIZE:
        raise ValueError(f"a tile of width {width} is {width * HASH_SIZE} bytes, not {len(data)}")
    return [bytes(data[at : at + HASH_SIZE]) for at in range(0, len(data), HASH_SIZE)]


def root_from_tiles(size: int, tiles: Tiles) -> bytes:
    """The root of the tree of ``size`` from its tiles, keyed by (level, index).

    Every tile of :func:`tiles_for` must be present. Each hash of a tile
    above level 0 is checked against the root of the full tile below it
    (tlog-tiles: "each hash in a tile is the Merkle Tree Hash of a *full*
    tile at the level below"), so every level-0 hash is hashed once; the
    root is then built (RFC 9162 section 2.1.1) from the few highest hashes
    that cover the tree. A partial tile may be given as the full tile that
    replaced it, whose first hashes are the partial tile's (tlog-tiles,
    "Partial Tiles"). Raises ``ValueError`` on a missing, malformed or
    inconsistent tile.
    """
    _require_size(size)
    if size == 0:
        return EMPTY_ROOT
    for level, index, width in tiles_for(size):
        if level > 0:
            _check_against_tiles_below(level, index, _tile(tiles, level, index, width), tiles)
    return _fold_right(_perfect_subtrees(size, tiles))


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length and its bytes.

    tlog-tiles, "Log entries". A bundle holds 1 to 256 entries of at most
    65535 bytes each; anything else raises ``ValueError``.
    """
    _require_width(len(entries))
    parts: list[bytes] = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry {position} is {len(entry)} bytes, over {MAX_ENTRY_SIZE}")
        parts += (len(entry).to_bytes(2, "big"), bytes(entry))
    return b"".join(parts)


def decode_bundle(data: bytes, width: int | None = None) -> list[bytes]:
    """The entries of an entry bundle (tlog-tiles, "Log entries").

    Strict: a truncated length or entry, more than 256 entries, an empty
    bundle, or (given ``width``) any count other than ``width`` or bytes left
    after the ``width``-th entry raise ``ValueError``.
    """
    limit = TILE_WIDTH if width is None else width
    _require_width(limit)
    entries: list[bytes] = []
    at, size = 0, len(data)
    # Inline, not a call per entry: a verifier decodes a million of them.
    while at < size:
        if len(entries) == limit:
            raise ValueError(f"{size - at} bytes after the bundle's {limit} entries")
        if at + 2 > size:
            raise ValueError(f"entry {len(entries)} is cut off inside its length")
        end = at + 2 + (data[at] << 8 | data[at + 1])
        if end > size:
            raise ValueError(
                f"entry {len(entries)} is cut off: {end - at - 2} bytes said, {size - at - 2} left"
            )
        entries.append(data[at + 2 : end])
        at = end
    if not entries:
        raise ValueError("an entry bundle holds at least one entry")
    if width is not None and len(entries) != width:
        raise ValueError(f"the bundle holds {len(entries)} entries, not {width}")
    return entries


def _tile(tiles: Tiles, level: int, index: int, width: int) -> list[bytes]:
    """The hashes of one tile the tree needs, or ``ValueError`` naming it."""
    data = tiles.get((level, index))
    if data is None:
        raise ValueError(f"tile {tile_path(level, index, width)} is missing")
    if width < TILE_WIDTH and len(data) == TILE_WIDTH * HASH_SIZE:
        data = data[: width * HASH_SIZE]
    try:
        return decode_tile(data, width)
    except ValueError as error:
        raise ValueError(f"tile {tile_path(level, index, width)}: {error}") from None


def _check_against_tiles_below(level: int, index: int, hashes: list[bytes], tiles: Tiles) -> None:
    for position, digest in enumerate(hashes):
        below = index * TILE_WIDTH + position
        if root(_tile(tiles, level - 1, below, TILE_WIDTH)) != digest:
            raise ValueError(
                f"hash {position} of tile {tile_path(level, index, len(hashes))} is not the "
                f"root of tile {tile_path(level - 1, below)}"
            )


def _perfect_subtrees(size: int, tiles: Tiles) -> list[bytes]:
    """The roots of the perfect subtrees that make up the tree, largest first.

    A subtree of 2**k leaves is 2**(k mod 8) consecutive hashes of the level
    k // 8, which lie in one tile since they start at a multiple of their count.
    """
    subtrees: list[bytes] = []
    start = 0
    for height in reversed(range(size.bit_length())):
        if not size >> height & 1:
            continue
        level, count = height // TILE_HEIGHT, 1 << (height % TILE_HEIGHT)
        first = start >> (TILE_HEIGHT * level)
        index, offset = divmod(first, TILE_WIDTH)
        hashes = _tile(tiles, level, index, width_of(size, level, index))
        subtrees.append(root(hashes[offset : offset + count]))
        start += 1 << height
    return subtrees


def _fold_right(subtrees: list[bytes]) -> bytes:
    """MTH of a tree from its perfect subtrees, largest first (RFC 9162 section 2.1.1)."""
    result = subtrees[-1]
    for left in reversed(subtrees[:-1]):
        result = node_hash(left, result)
    return result


def width_of(size: int, level: int, index: int) -> int:
    """How many hashes the level-``level`` tile ``index`` holds in a tree
    of ``size`` leaves: 256, fewer for the rightmost, 0 beyond it."""
    full, partial = divmod(size >> (TILE_HEIGHT * level), TILE_WIDTH)
    if index < full:
        return TILE_WIDTH
    return partial if index == full else 0


def _encode_index(index: int) -> str:
    """tlog-tiles: "zero-padded 3-digit path elements", ``x`` on all but the last."""
    digits = str(index)
    digits = digits.zfill(-(-len(digits) // _DIGITS_PER_ELEMENT) * _DIGITS_PER_ELEMENT)
    elements = [
        digits[at : at + _DIGITS_PER_ELEMENT] for at in range(0, len(digits), _DIGITS_PER_ELEMENT)
    ]
    return "/".join([*("x" + element for element in elements[:-1]), elements[-1]])


def _width_suffix(width: int | None) -> str:
    if width is None or width == TILE_WIDTH:
        return ""
    _require_width(width)
    return f"{_PARTIAL}/{width}"


def _parse_level(text: str, path: str) -> int:
    if not _is_ascii_number(text, max_digits=2):
        raise ValueError(f"{_show(path)}: the level must be a decimal number of 0 to {MAX_LEVEL}")
    level = int(text)
    if level > MAX_LEVEL:
        raise ValueError(f"{_show(path)}: level {level} is over {MAX_LEVEL}")
    return level


def _parse_index_and_width(text: str, path: str) -> tuple[int, int | None]:
    elements = text.split("/")
    width = None
    if len(elements) >= 2 and elements[-2].endswith(_PARTIAL):
        width = _parse_width(elements[-1], path)
        elements = [*elements[:-2], elements[-2].removesuffix(_PARTIAL)]
    return _parse_index(elements, path), width


def _parse_index(elements: list[str], path: str) -> int:
    if len(elements) > _MAX_INDEX_ELEMENTS:
        raise ValueError(f"{_show(path)}: an index of more than {_MAX_INDEX_ELEMENTS} elements")
    *upper, last = elements
    for element in upper:
        if not (element.startswith("x") and _is_three_digits(element[1:])):
            raise ValueError(f"{_show(path)}: {_show(element)} is not 'x' and three digits")
    if not _is_three_digits(last):
        raise ValueError(f"{_show(path)}: {_show(last)} is not three digits")
    if upper and upper[0] == "x000":
        raise ValueError(f"{_show(path)}: the index starts with a zero element 'x000'")
    return int("".join(element[1:] for element in upper) + last)


def _parse_width(text: str, path: str) -> int:
    if not _is_ascii_number(text, max_digits=3) or text == "0":
        raise ValueError(f"{_show(path)}: a partial width must be a decimal number of 1 to 255")
    width = int(text)
    if width == TILE_WIDTH:
        raise ValueError(f"{_show(path)}: a tile of width 256 is full and has no .p suffix")
    if width > TILE_WIDTH:
        raise ValueError(f"{_show(path)}: width {width} is over 255")
    return width


def _is_ascii_number(text: str, max_digits: int) -> bool:
    """Decimal ASCII digits with no leading zero (tlog-tiles: "no additional leading zeroes")."""
    return (
        0 < len(text) <= max_digits
        and text.isascii()
        and text.isdigit()
        and (text == "0" or not text.startswith("0"))
    )


def _is_three_digits(text: str) -> bool:
    return len(text) == _DIGITS_PER_ELEMENT and text.isascii() and text.isdigit()


def _require_level(level: int) -> None:
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"tile level {level} is not between 0 and {MAX_LEVEL}")


def _require_index(level: int, index: int) -> None:
    if index < 0:
        raise ValueError(f"tile index {index} is negative")
    if index << (TILE_HEIGHT * (level + 1)) > MAX_TREE_SIZE:
        raise ValueError(f"tile {index} at level {level} starts beyond any tree size")


def _require_width(width: int) -> None:
    if not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"a tile or bundle holds 1 to {TILE_WIDTH} items, not {width}")


def _require_size(size: int) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ValueError(f"tree size {size} is not between 0 and {MAX_TREE_SIZE}")


def _show(text: str, limit: int = 80) -> str:
    """An untrusted string for an error message: quoted, escaped and cut short."""
    return repr(text[:limit] + ("..." if len(text) > limit else ""))
