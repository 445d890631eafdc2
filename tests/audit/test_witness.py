"""Witnesses: a checkpoint that extends the last one cosigned is cosigned;
a rollback, a fork, a rewritten entry or another key's checkpoint is
refused with the status the spec gives; the server serves the checkpoint
with the cosignatures it collected. One test runs ``vrm audit witness`` as
its own process, over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from consent.audit import bundle, tree
from consent.audit.cosignature import CosignatureSigner
from consent.audit.merkle import consistency_proof_from
from consent.audit.note import Signer, open_note, sign_note
from consent.audit.witness import Refused, Witness, http_post, submit
from tests.audit.kit import grow, rewrite_history
from tests.kit import vrm
from vrm.settings import Settings

WITNESS = "witness.example/w1"


@pytest.fixture
def witness(app: FastAPI, tmp_path: Path) -> Witness:
    signer = CosignatureSigner(WITNESS, bytes(range(32)))
    return Witness(signer, [app.state.audit_signer.verifier_key()], tmp_path / "w.json")


def _in_process(witness: Witness):  # type: ignore[no-untyped-def]
    def post(url: str, body: bytes) -> tuple[int, str, bytes]:
        assert url == "https://w.example/add-checkpoint"
        answer = witness.add_checkpoint(body)
        return answer.status, answer.media_type, answer.body.encode()

    return post


def _collect(app: FastAPI, witness: Witness) -> int:
    asked = [tree.WitnessAt("https://w.example", witness.signer.verifier())]
    return tree.collect_cosignatures(app.state.engine, asked, _in_process(witness))


def test_the_server_serves_checkpoints_cosigned_by_its_witness(
    app: FastAPI, client: httpx.Client, witness: Witness
) -> None:
    grow(app.state.engine, 300)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    assert _collect(app, witness) == 1
    assert _collect(app, witness) == 0  # already cosigned
    grow(app.state.engine, 5)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    assert _collect(app, witness) == 1  # from 300, with a consistency proof
    assert witness.latest(tree.origin(app.state.settings))[0] == 305  # type: ignore[index]

    note = client.get("/audit/v1/checkpoint").text
    opened = open_note(note, [app.state.audit_signer.verifier(), witness.signer.verifier()])
    assert [s.name for s in opened.verified] == [tree.origin(app.state.settings), WITNESS]
    assert witness.signer.verifier().verified_timestamp(opened) is not None


def _checkpoint(app: FastAPI) -> tuple[str, int]:
    made = tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    assert made is not None
    return made.note, made.size


def _submit(app: FastAPI, witness: Witness, note: str, size: int, old: int) -> None:
    with app.state.engine.connect() as conn:
        hashes = tree.StoredHashes(conn, size)
        submit(
            _in_process(witness),
            "https://w.example",
            witness.signer.verifier(),
            note,
            size,
            old,
            lambda o, n: consistency_proof_from(hashes, o, n),
        )


def test_a_witness_refuses_every_other_history(app: FastAPI, witness: Witness) -> None:
    engine: Engine = app.state.engine
    grow(engine, 10)
    note, size = _checkpoint(app)
    _submit(app, witness, note, size, 0)

    # A rewritten entry, re-signed: the same size, another root.
    rewrite_history(engine, 9)
    grow(engine, 1)
    note, size = _checkpoint(app)
    with pytest.raises(Refused, match="holds 10 entries and refuses 10"):
        _submit(app, witness, note, size, 10)
    # Grown from the rewrite: a fork, whose proof from 10 cannot verify.
    grow(engine, 4)
    note, size = _checkpoint(app)
    with pytest.raises(Refused, match="answered 422: the checkpoint does not extend 10"):
        _submit(app, witness, note, size, 10)
    # An older database restored: fewer entries than the witness holds.
    rewrite_history(engine, 6)
    note, size = _checkpoint(app)
    with pytest.raises(Refused, match="holds 10 entries and refuses 6"):
        _submit(app, witness, note, size, 0)
    # Another key's checkpoint for the same log.
    forged = sign_note(
        note.split("\n\n")[0] + "\n", [Signer(tree.origin(app.state.settings), bytes(32))]
    )
    assert witness.add_checkpoint(f"old 10\n\n{forged}".encode()).status == 403
    # Through it all the witness kept the history it first cosigned.
    held = witness.latest(tree.origin(app.state.settings))
    assert held is not None
    assert held[0] == 10


def test_a_witness_answers_malformed_requests_as_the_spec_says(
    app: FastAPI, witness: Witness
) -> None:
    grow(app.state.engine, 3)
    note, _ = _checkpoint(app)
    for body, status in (
        (b"old 01\n\n" + note.encode(), 400),
        (b"new 0\n\n" + note.encode(), 400),
        (b"old 4\n\n" + note.encode(), 400),  # larger than the checkpoint
        (b"old 0\nnot base64!\n\n" + note.encode(), 400),
        (b"old 0\n" + note.encode(), 400),
        (b"old 0\n\nanother.example/log\n3\n" + note.split("\n", 3)[3].encode(), 404),
        (b"old 2\n\n" + note.encode(), 409),
    ):
        answer = witness.add_checkpoint(body)
        assert answer.status == status, (body, answer)
    conflict = witness.add_checkpoint(b"old 2\n\n" + note.encode())
    assert (conflict.media_type, conflict.body) == ("text/x.tlog.size", "0\n")
    assert witness.add_checkpoint(b"old 0\n\n" + note.encode()).status == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The witness and its HTTP are the same whatever database the log is in.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_vrm_audit_witness_cosigns_over_http(
    app: FastAPI, client: httpx.Client, tmp_path: Path
) -> None:
    port = _free_port()
    script = str(Path(sys.executable).parent / "vrm")
    command = [
        script,
        *("audit", "witness", "--name", WITNESS),
        *("--log-key", app.state.audit_signer.verifier_key()),
        *("--key-file", str(tmp_path / "w.key"), "--state", str(tmp_path / "w.json")),
        *("--port", str(port)),
    ]
    key = subprocess.run([*command, "--print-key"], capture_output=True, text=True, check=True)
    assert os.stat(tmp_path / "w.key").st_mode & 0o777 == 0o600
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    errors = (tmp_path / "witness.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=errors)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, (tmp_path / "witness.log").read_text()
                time.sleep(0.1)
        grow(app.state.engine, 3)
        tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
        settings = app.state.settings.model_copy(
            update={"audit_witnesses": [f"http://127.0.0.1:{port} {key.stdout.strip()}"]}
        )
        with httpx.Client(timeout=5) as http:
            added = tree.collect_cosignatures(
                app.state.engine, tree.witnesses(settings), http_post(http)
            )
        assert added == 1
    finally:
        server.terminate()
        server.wait(timeout=10)
        errors.close()
    note = client.get("/audit/v1/checkpoint").text
    assert note.count("\u2014 ") == 2
    assert f"\u2014 {WITNESS} " in note


def test_a_bundle_checks_the_witnesses_it_is_told_to(
    app: FastAPI, settings: Settings, witness: Witness, tmp_path: Path
) -> None:
    grow(app.state.engine, 4)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    assert _collect(app, witness) == 1
    ran = vrm(settings, "audit", "export", str(tmp_path / "b"))
    assert ran.returncode == 0, ran.stderr
    mine = witness.signer.verifier_key()
    report = bundle.verify(tmp_path / "b", witnesses=[mine])
    assert (report.signatures, report.witnesses, report.unchecked_signatures) == (2, 1, 0)
    assert bundle.verify(tmp_path / "b").unchecked_signatures == 1
    stranger = CosignatureSigner("witness.example/w2", bytes(32)).verifier_key()
    ran = vrm(settings, "audit", "verify", str(tmp_path / "b"), "--witness-key", stranger)
    assert (ran.returncode, ran.stderr) == (
        1,
        "vrm: audit verify failed: checkpoint: not cosigned by witness witness.example/w2\n",
    )
    ran = vrm(settings, "audit", "verify", str(tmp_path / "b"), "--witness-key", mine)
    assert ran.returncode == 0, ran.stderr
    assert ", cosigned by 1 witnesses" in ran.stdout.splitlines()[0]
