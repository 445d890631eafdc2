"""C2SP checkpoint texts (consent/audit/checkpoint.py): the spec's example,
a real log's checkpoint, and malformed ones."""

from __future__ import annotations

import base64

import pytest

from consent.audit.checkpoint import MAX_SIZE, Checkpoint
from consent.audit.note import NoteError

# c2sp.org/tlog-checkpoint, the example's note text, verbatim.
SPEC_TEXT = """example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
"""
SPEC_ROOT = base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")

# The note text of a checkpoint of the arche2025h1 staging CT log
# (tests/audit/test_cosignature.py verifies its signatures).
ARCHE_TEXT = """arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=
"""

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_spec_example_parses() -> None:
    checkpoint = Checkpoint.parse(SPEC_TEXT)
    assert checkpoint == Checkpoint("example.com/behind-the-sofa", 20852163, SPEC_ROOT)
    assert checkpoint.extensions == ()


def test_spec_example_is_written_back_byte_for_byte() -> None:
    assert Checkpoint.parse(SPEC_TEXT).to_text() == SPEC_TEXT
    assert Checkpoint("example.com/behind-the-sofa", 20852163, SPEC_ROOT).to_text() == SPEC_TEXT


def test_real_log_checkpoint_round_trips() -> None:
    checkpoint = Checkpoint.parse(ARCHE_TEXT)
    assert checkpoint.origin == "arche2025h1.staging.ct.transparency.dev"
    assert checkpoint.size == 1432088532
    assert checkpoint.to_text() == ARCHE_TEXT


def test_empty_tree_has_size_zero() -> None:
    text = f"log.example\n0\n{ROOT_B64}\n"
    assert Checkpoint.parse(text).size == 0
    assert Checkpoint("log.example", 0, ROOT).to_text() == text


def test_largest_size_round_trips() -> None:
    text = f"log.example\n{MAX_SIZE}\n{ROOT_B64}\n"
    assert Checkpoint.parse(text).to_text() == text


def test_extension_lines_round_trip() -> None:
    text = f"log.example\n5\n{ROOT_B64}\nfirst extension\n— second: any text\n"
    checkpoint = Checkpoint.parse(text)
    assert checkpoint.extensions == ("first extension", "— second: any text")
    assert checkpoint.to_text() == text


def test_origin_is_not_assumed_to_be_a_url() -> None:
    """Clients MUST NOT assume the origin's recommended shape."""
    text = f"My Log+1 (tést)\n5\n{ROOT_B64}\n"
    assert Checkpoint.parse(text).origin == "My Log+1 (tést)"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(SPEC_TEXT[:-1], id="no final newline"),
        pytest.param("example.com/behind-the-sofa\n20852163\n", id="two lines"),
        pytest.param("\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n", id="no origin"),
        pytest.param(SPEC_TEXT.replace("\n2085", "\n02085"), id="leading zero"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n00"), id="zero twice"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n+20852163"), id="plus sign"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n-1"), id="negative"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n 20852163"), id="leading space"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n20852163 "), id="trailing space"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n20_852_163"), id="underscores"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n\u0662\u0660"), id="arabic digits"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n0x13e2b43"), id="hexadecimal"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n"), id="empty size"),
        pytest.param(SPEC_TEXT.replace("\n20852163", f"\n{MAX_SIZE + 1}"), id="over 64 bits"),
        pytest.param(SPEC_TEXT.replace("\n20852163", "\n" + "9" * 5000), id="huge size"),
        pytest.param(SPEC_TEXT.replace("2I=", "2I"), id="unpadded root"),
        pytest.param(SPEC_TEXT.replace("2I=", "2J="), id="stray root bits"),
        pytest.param(SPEC_TEXT.replace("m/X", "m_X"), id="url-safe root"),
        pytest.param(SPEC_TEXT.replace("CsUYap", "CsUY ap"), id="space in root"),
        pytest.param(f"log.example\n5\n{base64.b64encode(bytes(31)).decode()}\n", id="31 bytes"),
        pytest.param(f"log.example\n5\n{base64.b64encode(bytes(33)).decode()}\n", id="33 bytes"),
        pytest.param(SPEC_TEXT + "\n", id="empty extension line"),
        pytest.param(SPEC_TEXT + "ext\n\n", id="empty last extension line"),
        pytest.param("example\x00.com\n5\n" + ROOT_B64 + "\n", id="control character"),
        pytest.param(SPEC_TEXT.replace("\n", "\r\n"), id="carriage returns"),
    ],
)
def test_malformed_checkpoint_is_rejected(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        pytest.param("", 1, ROOT, (), id="empty origin"),
        pytest.param("a\nb", 1, ROOT, (), id="two-line origin"),
        pytest.param("log", -1, ROOT, (), id="negative size"),
        pytest.param("log", MAX_SIZE + 1, ROOT, (), id="size over 64 bits"),
        pytest.param("log", True, ROOT, (), id="boolean size"),
        pytest.param("log", 1, ROOT[:31], (), id="short root"),
        pytest.param("log", 1, ROOT + b"\0", (), id="long root"),
        pytest.param("log", 1, ROOT, ("",), id="empty extension"),
        pytest.param("log", 1, ROOT, ("a\nb",), id="two-line extension"),
        pytest.param("log", 1, ROOT, ("tab\t",), id="control in extension"),
    ],
)
def test_invalid_checkpoint_cannot_be_built(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteError):
        Checkpoint(origin, size, root, extensions)
