"""C2SP cosignatures (consent/audit/cosignature.py): the spec's example, a real
log's checkpoint cosigned by four witnesses, round trips and tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest

from consent.audit.checkpoint import Checkpoint
from consent.audit.cosignature import (
    MAX_TIMESTAMP,
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_timestamp,
    cosigned_message,
)
from consent.audit.note import NoteError, Signature, Signer, Verifier, open_note, sign_note

# c2sp.org/tlog-cosignature, the example checkpoint with a cosignature and the
# example of the Ed25519 signed message, verbatim. The spec gives no keys.
SPEC_NOTE = """example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==
"""  # noqa: E501 - the spec's lines, verbatim
SPEC_MESSAGE = """cosignature/v1
time 1679315147
example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
"""

# A checkpoint of the arche2025h1 staging CT log (Ed25519 key ba2f06c0, beside
# an RFC 6962 signature), cosigned by four witnesses of the public witness
# network, with their published verifier keys. Its signatures verify, so the
# keys, the checkpoint and the cosignatures belong together.
ARCHE_NOTE = """arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
"""  # noqa: E501 - the log's lines, verbatim
ARCHE_LOG_VKEY = (
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
)
ARCHE_WITNESS_VKEYS = (
    "transparency.dev/DEV:witness-little-garden+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM",
    "witness1.smartit.nu/witness1+a48c820f+BPSFWg9G6KPiO7QPryYO5Xq4oYJJ+kAvLKLSimDhoxMO",
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2",
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv",
)
ARCHE_TIMESTAMP = 1779573024

CHECKPOINT = Checkpoint("log.example/audit", 42, bytes(range(32))).to_text()
OTHER_CHECKPOINT = Checkpoint("log.example/audit", 43, bytes(32)).to_text()
TIMESTAMP = 1767225600


def log_signer() -> Signer:
    return Signer("log.example/audit", b"\x01" * 32)


def witness(name: str = "witness.example/w1", fill: int = 2) -> CosignatureSigner:
    return CosignatureSigner(name, bytes([fill]) * 32)


def cosigned_note(*lines: str) -> str:
    return sign_note(CHECKPOINT, [log_signer()]) + "".join(lines)


# The spec's example and a real log's checkpoint.


def test_spec_example_cosignature_carries_its_timestamp() -> None:
    line = SPEC_NOTE.splitlines()[-1]
    sig = Signature.from_line(line)
    assert sig.name == "witness.example.com/w1"
    assert sig.key_id == bytes.fromhex("8d66cf3f")
    assert len(sig.signature) == 72
    assert cosignature_timestamp(sig.signature) == 1679315147


def test_signed_message_is_the_spec_example() -> None:
    text = SPEC_NOTE[: SPEC_NOTE.rindex("\n\n") + 1]
    assert cosigned_message(text, 1679315147) == SPEC_MESSAGE.encode()


def test_spec_example_is_a_well_formed_note_with_unknown_keys() -> None:
    with pytest.raises(NoteError, match="no known key signed"):
        open_note(SPEC_NOTE, [witness("witness.example.com/w1").verifier()])


def test_real_checkpoint_verifies_with_log_key_and_four_witnesses() -> None:
    witnesses = [CosignatureVerifier.parse(vkey) for vkey in ARCHE_WITNESS_VKEYS]
    opened = open_note(ARCHE_NOTE, [Verifier.parse(ARCHE_LOG_VKEY), *witnesses])
    assert len(opened.verified) == 5
    assert len(opened.unverified) == 1  # the log's RFC 6962 signature (type 0x05)
    assert [w.verified_timestamp(opened) for w in witnesses] == [ARCHE_TIMESTAMP] * 4
    assert Checkpoint.parse(opened.text).size == 1432088532


def test_real_checkpoint_with_another_size_is_rejected_by_each_witness() -> None:
    tampered = ARCHE_NOTE.replace("1432088532", "1432088533")
    for vkey in ARCHE_WITNESS_VKEYS:
        with pytest.raises(NoteError, match="does not verify"):
            open_note(tampered, [CosignatureVerifier.parse(vkey)])


def test_cosignature_verifier_key_round_trips() -> None:
    for vkey in ARCHE_WITNESS_VKEYS:
        assert CosignatureVerifier.parse(vkey).verifier_key() == vkey


def test_plain_ed25519_key_is_not_a_cosignature_key() -> None:
    with pytest.raises(NoteError, match="type 0x04"):
        CosignatureVerifier.parse(ARCHE_LOG_VKEY)
    with pytest.raises(NoteError, match="type 0x01"):
        Verifier.parse(ARCHE_WITNESS_VKEYS[0])


def test_cosignature_key_id_uses_type_byte_0x04() -> None:
    cosigner = witness()
    public_key = cosigner.verifier().public_key
    material = b"witness.example/w1\n\x04" + public_key
    assert cosigner.key_id == hashlib.sha256(material).digest()[:4]
    assert Signer("witness.example/w1", b"\x02" * 32).key_id != cosigner.key_id
    encoded = base64.b64encode(b"\x04" + public_key).decode()
    assert cosigner.verifier_key() == f"witness.example/w1+{cosigner.key_id.hex()}+{encoded}"


# Round trips.


def test_cosignature_round_trips_through_open_note() -> None:
    cosigner = witness()
    note = cosigned_note(cosigner.cosign(CHECKPOINT, TIMESTAMP))
    opened = open_note(note, [log_signer().verifier(), cosigner.verifier()])
    assert [sig.name for sig in opened.verified] == ["log.example/audit", "witness.example/w1"]
    assert cosigner.verifier().verified_timestamp(opened) == TIMESTAMP


def test_cosignature_line_carries_big_endian_timestamp_and_signature() -> None:
    sig = Signature.from_line(witness().cosign(CHECKPOINT, TIMESTAMP))
    assert sig.signature[:8] == TIMESTAMP.to_bytes(8, "big")
    assert len(sig.signature) == 72
    assert witness().verifier().verify(CHECKPOINT, sig.signature)


def test_witness_response_appended_to_the_logs_note_verifies() -> None:
    log = log_signer()
    opened = open_note(sign_note(CHECKPOINT, [log]), [log.verifier()])
    cosigners = [witness("witness.example/w1", 2), witness("witness.example/w2", 3)]
    lines = [c.cosign(opened.text, TIMESTAMP + i) for i, c in enumerate(cosigners)]
    note = opened.to_note(Signature.from_line(line) for line in lines)
    reopened = open_note(note, [log.verifier(), *(c.verifier() for c in cosigners)])
    assert len(reopened.verified) == 3
    assert [c.verifier().verified_timestamp(reopened) for c in cosigners] == [
        TIMESTAMP,
        TIMESTAMP + 1,
    ]


def test_cosignature_over_extension_lines_verifies() -> None:
    text = Checkpoint("log.example/audit", 1, bytes(32), ("extension",)).to_text()
    cosigner = witness()
    sig = Signature.from_line(cosigner.cosign(text, TIMESTAMP))
    assert cosigner.verifier().verify(text, sig.signature)
    assert not cosigner.verifier().verify(text.replace("extension", "extensioN"), sig.signature)


def test_extreme_timestamps_round_trip() -> None:
    for timestamp in (0, MAX_TIMESTAMP):
        sig = Signature.from_line(witness().cosign(CHECKPOINT, timestamp))
        assert cosignature_timestamp(sig.signature) == timestamp
        assert witness().verifier().verify(CHECKPOINT, sig.signature)


def test_verified_timestamp_is_none_when_the_cosigner_did_not_sign() -> None:
    opened = open_note(sign_note(CHECKPOINT, [log_signer()]), [log_signer().verifier()])
    assert witness().verifier().verified_timestamp(opened) is None


# Tampering.


def test_cosignature_with_another_timestamp_is_rejected() -> None:
    cosigner = witness()
    sig = Signature.from_line(cosigner.cosign(CHECKPOINT, TIMESTAMP))
    restamped = (TIMESTAMP + 1).to_bytes(8, "big") + sig.signature[8:]
    line = Signature(sig.name, sig.key_id, restamped).line
    with pytest.raises(NoteError, match="does not verify"):
        open_note(cosigned_note(line), [cosigner.verifier()])


def test_cosignature_of_another_checkpoint_is_rejected() -> None:
    cosigner = witness()
    line = cosigner.cosign(OTHER_CHECKPOINT, TIMESTAMP)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(cosigned_note(line), [log_signer().verifier(), cosigner.verifier()])


def test_plain_signature_under_the_cosigners_key_id_is_rejected() -> None:
    cosigner = witness()
    plain = Signature.from_line(Signer(cosigner.name, b"\x02" * 32).sign(CHECKPOINT))
    line = Signature(cosigner.name, cosigner.key_id, plain.signature).line
    with pytest.raises(NoteError, match="does not verify"):
        open_note(cosigned_note(line), [cosigner.verifier()])


def test_cosignature_is_not_a_plain_signature_of_the_same_key() -> None:
    """The type byte keeps the two key IDs apart: the cosignature is unknown
    to a plain Ed25519 verifier of the same key and name."""
    line = witness().cosign(CHECKPOINT, TIMESTAMP)
    plain = Signer("witness.example/w1", b"\x02" * 32).verifier()
    with pytest.raises(NoteError, match="no known key signed"):
        open_note(cosigned_note(line), [plain])


def test_timestamp_beyond_63_bits_is_rejected() -> None:
    cosigner = witness()
    sig = Signature.from_line(cosigner.cosign(CHECKPOINT, TIMESTAMP))
    overflowing = (2**63).to_bytes(8, "big") + sig.signature[8:]
    assert not cosigner.verifier().verify(CHECKPOINT, overflowing)
    with pytest.raises(NoteError, match="timestamp"):
        cosignature_timestamp(overflowing)


@pytest.mark.parametrize("size", [0, 8, 64, 71, 73])
def test_cosignature_of_the_wrong_length_is_rejected(size: int) -> None:
    assert not witness().verifier().verify(CHECKPOINT, bytes(size))
    with pytest.raises(NoteError, match="72 bytes"):
        cosignature_timestamp(bytes(size))


@pytest.mark.parametrize("timestamp", [-1, 2**63, True])
def test_cosigner_refuses_a_timestamp_out_of_range(timestamp: int) -> None:
    with pytest.raises(NoteError, match="timestamp"):
        witness().cosign(CHECKPOINT, timestamp)


@pytest.mark.parametrize(
    "text",
    ["not a checkpoint\n", CHECKPOINT[:-1], CHECKPOINT.replace("\n42\n", "\n042\n")],
)
def test_cosigner_refuses_to_sign_what_is_not_a_checkpoint(text: str) -> None:
    with pytest.raises(NoteError):
        witness().cosign(text, TIMESTAMP)


@pytest.mark.parametrize(
    "vkey",
    [
        ARCHE_WITNESS_VKEYS[2].replace("+da77ade7+", "+da77ade8+"),
        ARCHE_WITNESS_VKEYS[2].replace("remora", "Remora"),
        ARCHE_WITNESS_VKEYS[2][:-1],
        "remora.n621.de+da77ade7",
    ],
)
def test_malformed_cosignature_verifier_key_is_rejected(vkey: str) -> None:
    with pytest.raises(NoteError):
        CosignatureVerifier.parse(vkey)


def test_cosigner_rejects_a_seed_of_the_wrong_length_or_a_bad_name() -> None:
    with pytest.raises(NoteError, match="32 bytes"):
        CosignatureSigner("witness.example/w1", bytes(33))
    with pytest.raises(NoteError, match="key name"):
        CosignatureSigner("witness example", bytes(32))
