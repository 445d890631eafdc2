"""The tree the server publishes: checkpoints signed by the key at the
well-known URL, tiles that rebuild the checkpoint's root, and proofs that
verify against it, each checked with the verifier code a client would use."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from consent.audit import log, merkle, tiles, tree
from consent.audit.checkpoint import Checkpoint
from consent.audit.entries import Event
from consent.audit.note import NoteError, Verifier, open_note, sign_note
from consent.audit.routes import VERIFIER_KEY_PATH
from tests.kit import assert_problem
from vrm.dbtypes import utcnow


def _append(engine: Engine, count: int) -> None:
    with engine.begin() as conn:
        log.append(
            conn,
            [Event(type="vendor.registered", at=utcnow(), vendor_id=f"v{i}") for i in range(count)],
        )


def _leaves(engine: Engine) -> list[bytes]:
    with engine.connect() as conn:
        return list(conn.execute(select(log.ENTRY.c.leaf_hash).order_by(log.ENTRY.c.idx)).scalars())


def _opened(client: TestClient, note: str) -> Checkpoint:
    key = client.get(VERIFIER_KEY_PATH)
    assert key.status_code == 200, key.text
    opened = open_note(note, [Verifier.parse(key.text.strip())])
    return Checkpoint.parse(opened.text)


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def test_a_signed_checkpoint_commits_to_every_entry(app: FastAPI, client: TestClient) -> None:
    r = client.get("/audit/v1/checkpoint")
    assert_problem(r, 404, "not-found")
    _append(app.state.engine, 600)
    made = tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    assert made is not None
    # Nothing new: nothing signed.
    assert tree.sign_checkpoint(app.state.engine, app.state.audit_signer) is None

    r = client.get("/audit/v1/checkpoint")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = _opened(client, r.text)
    assert checkpoint.origin == tree.origin(app.state.settings)
    assert checkpoint.size == 600
    assert checkpoint.root == merkle.root(_leaves(app.state.engine))
    # Two complete subtrees of 256 leaves are stored for the tiles above.
    with app.state.engine.connect() as conn:
        nodes = conn.execute(select(tree.NODE.c.level, tree.NODE.c.idx)).all()
    assert sorted(nodes) == [(1, 0), (1, 1)]


def test_a_checkpoint_signed_by_another_key_is_refused_by_the_published_one(
    app: FastAPI, client: TestClient
) -> None:
    _append(app.state.engine, 3)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    note = client.get("/audit/v1/checkpoint").text
    other = tree.signer(app.state.settings, bytes(32))
    forged = open_note(note, [app.state.audit_signer.verifier()])
    with pytest.raises(NoteError):
        _opened(client, sign_note(forged.text, [other]))


def test_tiles_rebuild_the_checkpoints_root(app: FastAPI, client: TestClient) -> None:
    _append(app.state.engine, 600)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    _append(app.state.engine, 5)  # not in any checkpoint yet
    fetched: dict[tuple[int, int], bytes] = {}
    for level, index, width in tiles.tiles_for(600):
        path = tiles.tile_path(level, index, None if width == 256 else width)
        r = client.get("/audit/v1/" + path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert len(r.content) == 32 * width
        fetched[(level, index)] = r.content
    assert sorted(fetched) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    root = tiles.root_from_tiles(600, fetched)
    assert root == merkle.root(_leaves(app.state.engine)[:600])

    # Nothing beyond the checkpoint, and nothing malformed.
    for path in ("tile/0/002.p/89", "tile/0/002", "tile/0/003.p/1", "tile/1/000", "tile/0/x"):
        r = client.get("/audit/v1/" + path)
        assert_problem(r, 404, "not-found")


def test_inclusion_and_consistency_proofs_verify_against_the_checkpoints(
    app: FastAPI, client: TestClient
) -> None:
    _append(app.state.engine, 300)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    old = _opened(client, client.get("/audit/v1/checkpoint").text)
    _append(app.state.engine, 400)
    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    leaves = _leaves(app.state.engine)

    for index in (0, 255, 256, 299, 699):
        r = client.get("/audit/v1/proof/inclusion", params={"index": index})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        new = _opened(client, body["checkpoint"])
        assert (body["index"], body["size"], new.size) == (index, 700, 700)
        assert _b64(body["leaf_hash"]) == leaves[index]
        merkle.verify_inclusion(
            leaves[index], index, 700, [_b64(h) for h in body["proof"]], new.root
        )
    # In the older checkpoint too.
    r = client.get("/audit/v1/proof/inclusion", params={"index": 10, "size": 300})
    assert r.status_code == 200, r.text
    merkle.verify_inclusion(leaves[10], 10, 300, [_b64(h) for h in r.json()["proof"]], old.root)

    r = client.get("/audit/v1/proof/consistency", params={"first": 300})
    assert r.status_code == 200, r.text
    body = r.json()
    new = _opened(client, body["checkpoint"])
    merkle.verify_consistency(300, 700, old.root, new.root, [_b64(h) for h in body["proof"]])
    proof = [_b64(h) for h in body["proof"]]
    with pytest.raises(merkle.ProofError):
        merkle.verify_consistency(300, 700, merkle.leaf_hash(b"forked"), new.root, proof)

    for path, params, status in (
        ("inclusion", {"index": 700}, 422),
        ("inclusion", {"index": 1, "size": 500}, 404),
        ("inclusion", {"index": -1}, 422),
        ("consistency", {"first": 0}, 422),
        ("consistency", {"first": 701}, 422),
        ("consistency", {"first": 1, "second": 650}, 404),
    ):
        r = client.get(f"/audit/v1/proof/{path}", params=params)
        assert r.status_code == status, (path, params, r.text)
        assert r.headers["content-type"] == "application/problem+json"


def test_the_server_signs_new_entries_in_the_background(app: FastAPI) -> None:
    settings = app.state.settings.model_copy(update={"audit_checkpoint_seconds": 0.05})
    signing = tree.start(app.state.engine, settings, bytes(range(32)))
    assert signing is not None
    try:
        _append(app.state.engine, 2)
        deadline = time.monotonic() + 30
        with app.state.engine.connect() as conn:
            while (found := tree.latest(conn)) is None or found.size < 2:
                assert time.monotonic() < deadline, "no checkpoint was signed"
                conn.rollback()
                time.sleep(0.05)
    finally:
        signing.stop()
    assert found.size == 2
    off = app.state.settings.model_copy(update={"audit_checkpoint_seconds": 0})
    assert tree.start(app.state.engine, off, bytes(32)) is None
