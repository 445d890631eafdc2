"""``vrm audit export`` and ``vrm audit verify``: an intact bundle verifies
and says what it checked; every way of rewriting the record is caught and
named, whether done to the bundle or to the database with the checkpoints
signed again."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from consent.audit import bundle, log, tiles, tree
from consent.audit.note import Signer, sign_note
from tests.audit.kit import grow, plant_read, rewrite_history
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer, vrm
from vrm.settings import Settings


def _life(ana: Person, vendor: Vendor, reads: int = 3) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")["access_token"]
    for _ in range(reads):
        r = vendor.client.get("/v1/data", headers=bearer(token))
        assert r.status_code == 200, r.text


def _export(settings: Settings, folder: Path, *args: str) -> None:
    ran = vrm(settings, "audit", "export", str(folder), *args)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("exported ")


def _verify(settings: Settings, folder: Path, *args: str) -> tuple[int, str, str]:
    ran = vrm(settings, "audit", "verify", str(folder), *args, columns=200)
    return ran.returncode, ran.stdout, ran.stderr


def test_an_exported_bundle_verifies_and_says_what_it_checked(
    settings: Settings, app: FastAPI, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    _life(ana, vendor)
    _export(settings, tmp_path / "b")
    code, out, err = _verify(settings, tmp_path / "b")
    assert (code, err) == (0, ""), err
    with app.state.engine.connect() as conn:
        size = log.size(conn)
    assert out.splitlines() == [
        f"log {tree.origin(settings)}: {size} entries, checkpoint signed by its key",
        "1 tiles hash to the checkpoint's root",
        f"{size} entries (from 0) match their leaves and are canonical",
        "3 reads and deposits fall inside their grants",
        "ok",
    ]
    report = bundle.verify(tmp_path / "b")
    assert report.counts == {
        "vendor.registered": 1,
        "consent.granted": 1,
        "token.issued": 1,
        "data.read": 3,
    }


def _bundle_of(settings: Settings, app: FastAPI, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    _export(settings, folder)
    return folder


def _fails(folder: Path, message: str, **kwargs: object) -> None:
    with pytest.raises(bundle.VerifyError, match=message):
        bundle.verify(folder, **kwargs)  # type: ignore[arg-type]


def test_a_tampered_bundle_is_caught_and_named(
    settings: Settings, app: FastAPI, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    _life(ana, vendor)
    good = _bundle_of(settings, app, tmp_path, "good")
    with app.state.engine.connect() as conn:
        size = log.size(conn)
    entries_file = good / tiles.entries_path(0, size)
    bodies = tiles.decode_bundle(entries_file.read_bytes(), size)

    def variant(
        name: str, entries: list[bytes] | None = None, files: dict[str, bytes] | None = None
    ) -> Path:
        folder = tmp_path / name
        shutil.copytree(good, folder)
        if entries is not None:
            (folder / tiles.entries_path(0, size)).write_bytes(tiles.encode_bundle(entries))
        for path, data in (files or {}).items():
            (folder / path).write_bytes(data)
        return folder

    flipped = bytearray(bodies[4])
    flipped[flipped.index(b"profile.email")] ^= 0x20  # profile.email -> Profile.email
    _fails(variant("flipped", [*bodies[:4], bytes(flipped), *bodies[5:]]), "entry 4: its bytes")
    _fails(variant("deleted", bodies[:3] + bodies[4:]), "entries/000")
    _fails(variant("inserted", [*bodies[:2], bodies[2], *bodies[2:-1]]), "entry 3: its bytes")
    _fails(
        variant("reordered", [bodies[0], bodies[2], bodies[1], *bodies[3:]]), "entry 1: its bytes"
    )
    tile = bytearray((good / tiles.tile_path(0, 0, size)).read_bytes())
    tile[0] ^= 1
    _fails(variant("tile", files={tiles.tile_path(0, 0, size): bytes(tile)}), "tiles: they do not")
    # A checkpoint signed by another key than the log's.
    checkpoint = (good / "checkpoint").read_text()
    text_part = checkpoint.split("\n\n")[0] + "\n"
    forged = sign_note(text_part, [Signer(tree.origin(settings), bytes(32))])
    _fails(variant("forged", files={"checkpoint": forged.encode()}), "checkpoint: .*no known key")
    # The same forgery with its own key in the bundle: caught by the key the
    # auditor brings, or by the checkpoint they pinned.
    other = Signer(tree.origin(settings), bytes(32))
    resigned = variant(
        "resigned",
        files={"checkpoint": forged.encode(), "verifier-key": other.verifier_key().encode()},
    )
    bundle.verify(resigned)  # consistent with itself...
    _fails(resigned, "checkpoint: .*no known key", key=app.state.audit_signer.verifier_key())
    _fails(resigned, "pinned checkpoint: .*no known key", pin=checkpoint.encode())


def test_a_rolled_back_or_forked_log_is_caught_by_a_pinned_checkpoint(
    settings: Settings, app: FastAPI, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    _life(ana, vendor)
    first = _bundle_of(settings, app, tmp_path, "first")
    pin = tmp_path / "pinned"
    pin.write_bytes((first / "checkpoint").read_bytes())
    engine: Engine = app.state.engine
    with engine.connect() as conn:
        size = log.size(conn)

    # An older database restored: fewer entries than the pinned checkpoint.
    rewrite_history(engine, size - 2)
    older = _bundle_of(settings, app, tmp_path, "older")
    bundle.verify(older)  # signed, and consistent with itself
    code, _, err = _verify(settings, older, "--pin", str(pin))
    assert code == 1
    assert err == (
        f"vrm: audit verify failed: pinned checkpoint: it covers {size} entries and the "
        f"bundle only {size - 2} (the log was rolled back)\n"
    )

    # Then re-grown with other entries: a fork.
    grow(engine, 5)
    forked = _bundle_of(settings, app, tmp_path, "forked")
    bundle.verify(forked)
    code, _, err = _verify(settings, forked, "--pin", str(pin))
    assert code == 1
    assert err == (
        f"vrm: audit verify failed: pinned checkpoint: its {size} entries are not the "
        f"bundle's first {size} (the log was rewritten)\n"
    )


def test_a_read_outside_its_grant_is_caught(
    settings: Settings, app: FastAPI, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    _life(ana, vendor, reads=1)
    grant_id = ana.client.get("/api/v1/me/grants").json()["items"][0]["id"]
    # An entry claiming a read of a field the grant never gave.
    plant_read(
        app.state.engine,
        customer_id=ana.id,
        vendor_id=vendor.client_id,
        grant_id=grant_id,
        fields=["profile.email", "profile.phone"],
    )
    folder = _bundle_of(settings, app, tmp_path, "outside")
    code, _, err = _verify(settings, folder)
    assert code == 1
    assert err.startswith("vrm: audit verify failed: entry ")
    assert err.endswith(": fields outside the grant: profile.phone\n")


def test_a_read_after_its_grant_was_revoked_is_caught(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    _life(ana, vendor, reads=1)
    grant_id = ana.client.get("/api/v1/me/grants").json()["items"][0]["id"]
    assert ana.client.delete(f"/api/v1/me/grants/{grant_id}").status_code == 204
    plant_read(
        app.state.engine,
        customer_id=ana.id,
        vendor_id=vendor.client_id,
        grant_id=grant_id,
        fields=["profile.email"],
    )
    _fails(_bundle_of(settings, app, tmp_path, "late"), "after the grant ended at entry")


def test_an_incremental_bundle_verifies_from_its_start(
    settings: Settings, app: FastAPI, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    _life(ana, vendor, reads=1)
    first = _bundle_of(settings, app, tmp_path, "first")
    since = bundle.verify(first).size
    _life(ana, vendor, reads=2)
    _export(settings, tmp_path / "next", "--since", str(since))
    report = bundle.verify(tmp_path / "next", pin=(first / "checkpoint").read_bytes())
    assert (report.since, report.pinned) == (since, since)
    assert report.entries == report.size - since
    code, _, err = _verify(settings, tmp_path / "nothing")
    assert (code, err) == (
        1,
        "vrm: audit verify failed: verifier-key: cannot be read (No such file or directory)\n",
    )
    ran = vrm(settings, "audit", "export", str(tmp_path / "next"))
    assert ran.returncode == 1
    assert ran.stderr == f"vrm: {tmp_path / 'next'} is not empty\n"


# Checking a bundle reads files only: one database is enough.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_worker_processes_check_what_one_process_does(
    settings: Settings, app: FastAPI, ana: Person, vendor: Vendor, tmp_path: Path
) -> None:
    """Large bundles are checked by one worker per CPU: the same report,
    and the same failures, as in one process."""
    _life(ana, vendor, reads=4)
    folder = _bundle_of(settings, app, tmp_path, "b")
    alone = bundle.verify(folder, workers=1)
    assert bundle.verify(folder, workers=2) == alone
    with app.state.engine.connect() as conn:
        size = log.size(conn)
    path = folder / tiles.entries_path(0, size)
    bodies = tiles.decode_bundle(path.read_bytes(), size)
    path.write_bytes(tiles.encode_bundle([*bodies[:-1], bodies[-1].replace(b"data", b"dada")]))
    _fails(folder, f"entry {size - 1}: its bytes", workers=2)
