"""C2SP signed notes (consent/audit/note.py) against the spec's examples and
Go's golang.org/x/mod/sumdb/note, and against every way a note can be bent."""

from __future__ import annotations

import base64
import hashlib

import pytest

from consent.audit.note import (
    MAX_SIGNATURES,
    NoteError,
    Signature,
    Signer,
    Verifier,
    encode_verifier_key,
    key_id,
    open_note,
    sign_note,
)

# c2sp.org/signed-note, the example at the top of the spec (revision
# 1f701bb5e6f2ca0e552518737773efb1f7e55f91), verbatim. The spec gives no
# verifier key for it: it can be parsed but not verified.
POEM_NOTE = """Ognuno sta solo sul cuor della terra
trafitto da un raggio di sole:

ed è subito sera.

— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=
"""  # noqa: E501 - the spec's line, verbatim

# c2sp.org/signed-note, the example of the "Verifier keys" section of later
# revisions (not in the stored revision above; quoted the same by other
# implementations). It verifies, so the key and the signature are a pair.
FOO_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
FOO_TEXT = "This is an example message.\n"
FOO_NOTE = (
    FOO_TEXT + "\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"  # noqa: E501
)

# golang.org/x/mod/sumdb/note, the package documentation and note_test.go.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"  # noqa: E501
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"  # noqa: E501


def peter_signer() -> Signer:
    """Go's PRIVATE+KEY string is base64(0x01 || 32-byte seed)."""
    _, _, name, _, material = PETER_SKEY.split("+", 4)
    raw = base64.b64decode(material)
    assert raw[0] == 0x01
    return Signer(name, raw[1:])


def signer(name: str = "log.example/test", fill: int = 7) -> Signer:
    return Signer(name, bytes([fill]) * 32)


def reencode(line: str, mutate: bytes) -> str:
    """A signature line with its decoded bytes replaced by ``mutate``."""
    prefix, _, _ = line.rstrip("\n").rpartition(" ")
    return f"{prefix} {base64.b64encode(mutate).decode()}\n"


# The spec's and Go's examples.


def test_spec_verifier_key_example_verifies_its_note() -> None:
    verifier = Verifier.parse(FOO_VKEY)
    opened = open_note(FOO_NOTE, [verifier])
    assert opened.text == FOO_TEXT
    assert [sig.name for sig in opened.verified] == ["example.com/foo"]
    assert opened.unverified == ()
    assert verifier.verifier_key() == FOO_VKEY


def test_go_example_verifies_and_keeps_the_unknown_signature() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    opened = open_note(note, [Verifier.parse(PETER_VKEY)])
    assert opened.text == TEXT
    assert [sig.line for sig in opened.verified] == [PETER_SIG]
    assert [sig.line for sig in opened.unverified] == [ENOCH_SIG]
    assert opened.verified[0].key_id == bytes.fromhex("c74f20a3")
    assert opened.to_note() == note


def test_go_example_verifies_both_signatures_when_both_keys_are_known() -> None:
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    opened = open_note(note, [Verifier.parse(ENOCH_VKEY), Verifier.parse(PETER_VKEY)])
    assert [sig.name for sig in opened.verified] == ["PeterNeumann", "EnochRoot"]
    assert opened.unverified == ()


def test_signing_with_go_private_key_reproduces_its_note() -> None:
    assert sign_note(TEXT, [peter_signer()]) == TEXT + "\n" + PETER_SIG


def test_signer_publishes_go_verifier_key() -> None:
    assert peter_signer().verifier_key() == PETER_VKEY
    assert peter_signer().key_id == bytes.fromhex("c74f20a3")


def test_key_id_hashes_name_newline_type_byte_and_public_key() -> None:
    verifier = Verifier.parse(PETER_VKEY)
    material = b"PeterNeumann" + b"\x0a" + b"\x01" + verifier.public_key
    assert hashlib.sha256(material).digest()[:4] == verifier.key_id
    assert key_id("PeterNeumann", 0x01, verifier.public_key) == verifier.key_id


def test_spec_poem_parses_but_no_known_key_signed_it() -> None:
    stranger = Verifier("quasimodo.example/salvatore", bytes(signer().verifier().public_key))
    with pytest.raises(NoteError, match="no known key signed"):
        open_note(POEM_NOTE, [stranger])


def test_text_ends_at_the_last_blank_line() -> None:
    text = POEM_NOTE[: POEM_NOTE.rindex("\n\n") + 1]
    assert "\n\n" in text
    key = signer("quasimodo.example/salvatore")
    opened = open_note(sign_note(text, [key]), [key.verifier()])
    assert opened.text == text


def test_text_may_end_in_blank_lines() -> None:
    key = signer()
    for text in ("Note\n\n", "\n", "a\n\n\n"):
        assert open_note(sign_note(text, [key]), [key.verifier()]).text == text


def test_note_may_arrive_as_utf8_bytes() -> None:
    opened = open_note(FOO_NOTE.encode(), [Verifier.parse(FOO_VKEY)])
    assert opened.text == FOO_TEXT


def test_spec_minimum_of_sixteen_signatures_is_accepted() -> None:
    keys = [signer(f"witness.example/w{i}", i) for i in range(16)]
    opened = open_note(sign_note(TEXT, keys), [key.verifier() for key in keys])
    assert len(opened.verified) == 16


# Tampering.


def test_flipped_byte_in_text_is_rejected() -> None:
    note = TEXT.replace("answer", "answes") + "\n" + PETER_SIG
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note, [Verifier.parse(PETER_VKEY)])


def test_every_flipped_signature_byte_is_rejected() -> None:
    sig = Signature.from_line(PETER_SIG)
    for i in range(len(sig.signature)):
        flipped = bytearray(sig.signature)
        flipped[i] ^= 0x01
        line = Signature(sig.name, sig.key_id, bytes(flipped)).line
        with pytest.raises(NoteError, match="does not verify"):
            open_note(TEXT + "\n" + line, [Verifier.parse(PETER_VKEY)])


def test_another_key_under_the_same_name_is_ignored() -> None:
    impostor = signer("PeterNeumann", 9)
    note = sign_note(TEXT, [impostor])
    with pytest.raises(NoteError, match="no known key signed"):
        open_note(note, [Verifier.parse(PETER_VKEY)])
    both = TEXT + "\n" + PETER_SIG + impostor.sign(TEXT)
    opened = open_note(both, [Verifier.parse(PETER_VKEY)])
    assert [sig.key_id for sig in opened.unverified] == [impostor.key_id]


def test_another_keys_signature_under_the_known_key_id_is_rejected() -> None:
    forged = Signature.from_line(signer("PeterNeumann", 9).sign(TEXT))
    line = Signature("PeterNeumann", bytes.fromhex("c74f20a3"), forged.signature).line
    with pytest.raises(NoteError, match="does not verify"):
        open_note(TEXT + "\n" + line, [Verifier.parse(PETER_VKEY)])


def test_truncated_signature_is_rejected() -> None:
    raw = base64.b64decode(PETER_SIG.split(" ")[2])
    for cut in (1, 4, 30, 64):
        with pytest.raises(NoteError, match="does not verify|too short"):
            open_note(TEXT + "\n" + reencode(PETER_SIG, raw[:-cut]), [Verifier.parse(PETER_VKEY)])
    with pytest.raises(NoteError, match="base64"):
        open_note(TEXT + "\n" + PETER_SIG[:-3] + "\n", [Verifier.parse(PETER_VKEY)])


def test_a_valid_signature_does_not_excuse_a_failing_known_one() -> None:
    enoch = Signature.from_line(ENOCH_SIG)
    bad_enoch = Signature(enoch.name, enoch.key_id, bytes(64)).line
    note = TEXT + "\n" + PETER_SIG + bad_enoch
    with pytest.raises(NoteError, match="EnochRoot\\+af0cfe78 does not verify"):
        open_note(note, [Verifier.parse(PETER_VKEY), Verifier.parse(ENOCH_VKEY)])


@pytest.mark.parametrize(
    "note",
    [
        pytest.param(TEXT + "\n" + PETER_SIG[:-1], id="missing final newline"),
        pytest.param(TEXT, id="no signatures"),
        pytest.param(TEXT + "\n", id="blank line but no signatures"),
        pytest.param(TEXT + PETER_SIG, id="no blank line"),
        pytest.param(TEXT + "\n" + PETER_SIG + PETER_SIG, id="duplicate line"),
        pytest.param(TEXT + "\n" + PETER_SIG + "Unexpected line.\n", id="stray line"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("—", "-"), id="hyphen for em dash"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("— ", "—"), id="no space after dash"),
        pytest.param(TEXT + "\n" + " " + PETER_SIG, id="leading space"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace(" x08", "  x08"), id="two spaces"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("=\n", "= \n"), id="trailing space"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("Peter", "Bad Peter"), id="space in name"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("Peter", "Bad+"), id="plus in name"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("PeterNeumann", ""), id="empty name"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("x08go", "x08g!"), id="not base64"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("AM=", "AM"), id="unpadded base64"),
        pytest.param(TEXT + "\n" + PETER_SIG.replace("AM=", "AN="), id="stray base64 bits"),
        pytest.param(TEXT + "\n" + "— PeterNeumann x08gow==\n", id="key ID only"),
        pytest.param("\x01" + TEXT + "\n" + PETER_SIG, id="control character"),
        pytest.param(TEXT.replace("\n", "\r\n") + "\n" + PETER_SIG, id="carriage returns"),
        pytest.param(TEXT.replace(" ", "\t") + "\n" + PETER_SIG, id="tab"),
        pytest.param("\ud800" + TEXT + "\n" + PETER_SIG, id="lone surrogate"),
        pytest.param(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), id="invalid UTF-8"),
        pytest.param(TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), id="too many signatures"),
    ],
)
def test_malformed_note_is_rejected(note: str | bytes) -> None:
    with pytest.raises(NoteError):
        open_note(note, [Verifier.parse(PETER_VKEY)])


def test_too_many_unknown_signatures_are_rejected() -> None:
    keys = [signer(f"w{i}", i % 256) for i in range(MAX_SIGNATURES + 1)]
    note = TEXT + "\n" + "".join(key.sign(TEXT) for key in keys)
    with pytest.raises(NoteError, match="at most"):
        open_note(note, [Verifier.parse(PETER_VKEY)])


def test_no_verifiers_means_no_known_key() -> None:
    with pytest.raises(NoteError, match="no known key signed"):
        open_note(TEXT + "\n" + PETER_SIG, [])


def test_two_verifiers_of_one_key_are_rejected() -> None:
    with pytest.raises(NoteError, match="two verifiers"):
        open_note(TEXT + "\n" + PETER_SIG, [Verifier.parse(PETER_VKEY)] * 2)


# Verifier keys.


def test_every_substring_and_every_altered_byte_of_a_verifier_key_is_rejected() -> None:
    """Go's TestNewVerifier manglings."""
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    Verifier.parse(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):
        altered = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            Verifier.parse(altered)


@pytest.mark.parametrize(
    "vkey",
    [
        # Go's: a key of the wrong length and an unknown type, key IDs adjusted.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # A timestamped cosignature (0x04) key of transparency-dev/formats' tests.
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+0xc74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
    ],
)
def test_malformed_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


@pytest.mark.parametrize("name", ["Peter Neumann", "Peter\u00a0Neumann", "Peter\u3000", "a\x01"])
def test_verifier_key_with_a_space_or_control_in_its_name_is_rejected(name: str) -> None:
    public_key = Verifier.parse(PETER_VKEY).public_key
    kid = hashlib.sha256(name.encode() + b"\n\x01" + public_key).digest()[:4]
    material = base64.b64encode(b"\x01" + public_key).decode()
    with pytest.raises(NoteError, match="key name"):
        Verifier.parse(f"{name}+{kid.hex()}+{material}")
    with pytest.raises(NoteError, match="key name"):
        encode_verifier_key(name, 0x01, public_key)


def test_verifier_key_accepts_an_uppercase_key_id() -> None:
    name, kid, material = PETER_VKEY.split("+", 2)
    assert Verifier.parse(f"{name}+{kid.upper()}+{material}").verifier_key() == PETER_VKEY


# Signing.


def test_signer_rejects_a_seed_of_the_wrong_length_or_a_bad_name() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        Signer("log.example", bytes(31))
    with pytest.raises(NoteError, match="key name"):
        Signer("log example", bytes(32))
    with pytest.raises(NoteError, match="key name"):
        Signer("", bytes(32))


@pytest.mark.parametrize("text", ["no final newline", "tab\there\n", "\x1b[31m\n", "\ud800\n"])
def test_sign_note_rejects_text_a_note_cannot_hold(text: str) -> None:
    with pytest.raises(NoteError):
        sign_note(text, [signer()])


def test_sign_note_needs_a_signer_and_each_key_once() -> None:
    with pytest.raises(NoteError, match="at least one"):
        sign_note(TEXT, [])
    with pytest.raises(NoteError, match="twice"):
        sign_note(TEXT, [signer(), signer()])


def test_signed_note_round_trips_with_several_signers() -> None:
    keys = [signer("log.example/a", 1), signer("log.example/b", 2)]
    note = sign_note(TEXT, keys)
    opened = open_note(note, [keys[1].verifier()])
    assert opened.text == TEXT
    assert [sig.name for sig in opened.verified] == ["log.example/b"]
    assert [sig.name for sig in opened.unverified] == ["log.example/a"]
    assert opened.to_note() == note


def test_to_note_appends_signatures_but_not_a_key_twice() -> None:
    log, other = signer("log.example/a", 1), signer("log.example/b", 2)
    opened = open_note(sign_note(TEXT, [log]), [log.verifier()])
    extra = Signature.from_line(other.sign(TEXT))
    note = opened.to_note([extra])
    assert open_note(note, [log.verifier(), other.verifier()]).verified[1] == extra
    with pytest.raises(NoteError, match="twice"):
        opened.to_note([opened.verified[0]])


def test_signature_line_round_trips() -> None:
    sig = Signature.from_line(PETER_SIG)
    assert sig.name == "PeterNeumann"
    assert sig.key_id == bytes.fromhex("c74f20a3")
    assert len(sig.signature) == 64
    assert sig.line == PETER_SIG
    with pytest.raises(NoteError, match="one line"):
        Signature.from_line(PETER_SIG + PETER_SIG)


def test_reprs_show_no_private_key() -> None:
    key = peter_signer()
    assert "c74f20a3" in repr(key)
    assert "AYEK" not in repr(key)
    assert PETER_VKEY in repr(key.verifier())
