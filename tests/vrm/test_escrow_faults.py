"""Lost and broken escrow keys: a grant's escrow key file missing,
unreadable, truncated or with bytes flipped, or its escrowed copy
(``key_escrow.wrapped``) altered, while the grant lives and its customer is
away (vrm/keys/service.py, Vault._from_escrow).

The vendor's read of that customer fails with a clear problem, and nothing
else does: other customers' reads, another grant's copy of the same key,
the customer's own reads in their session. Absence and damage answer and
log differently; ``vrm keys check`` names the grant, never the customer.

The counterpart of tests/vrm/test_key_faults.py, which breaks root keys.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import Response
from sqlmodel import Session, col, select

from tests.conftest import Person, log_out, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, vrm
from tests.vendor_api.helpers import PROFILE, feed_token, put, read, read_feed
from vrm.keys.models import KeyEscrow
from vrm.settings import Settings

FAULTS = ["missing", "unreadable", "truncated", "flipped", "altered copy"]
GONE = (
    "the escrow key of the grant that shared this key is gone or unreadable "
    "(the grant ended, or the key store lost it)"
)
DAMAGED = "an escrowed data key failed its integrity check"
# What the vault logs for each fault (vrm.keys.service).
LOGGED = {
    "missing": "an escrowed profile.email data key did not open: escrow key missing",
    "unreadable": "an escrowed profile.email data key did not open: escrow key unreadable",
    "truncated": "an escrowed profile.email data key did not open: escrow key unreadable",
    "flipped": "an escrowed profile.email data key did not open: integrity check failed",
    "altered copy": "an escrowed profile.email data key did not open: integrity check failed",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No cache: every read opens its key, so a broken one shows at once.
    return settings.model_copy(update={"key_cache_seconds": 0.0, "key_custody": "customer"})


def _held_by_customer(app: FastAPI, email: str, password: str) -> Person:
    person = sign_up_and_log_in(app, email, password)
    put(person, "profile", {**PROFILE, "email": email})
    return person


@pytest.fixture
def ana(app: FastAPI) -> Person:
    return _held_by_customer(app, "ana@example.org", "correct horse battery staple")


@pytest.fixture
def bob(app: FastAPI) -> Person:
    return _held_by_customer(app, "bob@example.org", "another long passphrase")


def _escrow_of(app: FastAPI, customer_id: str) -> KeyEscrow:
    """The customer's one escrowed copy (of their email's key)."""
    with Session(app.state.engine) as session:
        row: KeyEscrow = session.exec(
            select(KeyEscrow).where(col(KeyEscrow.customer_id) == customer_id)
        ).one()
        return row


def _escrow_key(settings: Settings, row: KeyEscrow) -> Path:
    return settings.key_dir_resolved / "escrow" / row.holder_id / f"{row.escrow_version}.key"


def _break(app: FastAPI, settings: Settings, row: KeyEscrow, fault: str) -> None:
    path = _escrow_key(settings, row)
    if fault == "missing":
        path.unlink()
    elif fault == "unreadable":
        path.unlink()
        path.mkdir()
    elif fault == "truncated":
        path.write_bytes(path.read_bytes()[:16])
    elif fault == "flipped":
        key = path.read_bytes()
        path.write_bytes(bytes([key[0] ^ 1]) + key[1:])
    else:
        with Session(app.state.engine) as session:
            stored = session.get(KeyEscrow, (row.holder_id, row.category, row.version))
            assert stored is not None
            stored.wrapped = stored.wrapped[:-1] + bytes([stored.wrapped[-1] ^ 1])
            session.add(stored)
            session.commit()


@pytest.fixture
def granted(ana: Person, bob: Person, vendor: Vendor) -> dict[str, str]:
    """Ana and Bob each let the vendor read their email, then leave: the
    vendor reads them through their grants' escrow. Access tokens by name."""
    tokens = {
        "ana": tokens_for(ana, vendor, "profile.email:read")["access_token"],
        "bob": tokens_for(bob, vendor, "profile.email:read")["access_token"],
    }
    for person in (ana, bob):
        log_out(person)
    return tokens


def _assert_refused(r: Response, fault: str) -> None:
    if fault in ("flipped", "altered copy"):
        assert_problem(r, 500, "integrity", detail=DAMAGED, instance="/v1/data")
    else:
        assert_problem(r, 500, "key-unavailable", detail=GONE, instance="/v1/data")


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_escrow_fails_that_customers_vendor_read_alone(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    bob: Person,
    vendor: Vendor,
    granted: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    row = _escrow_of(app, ana.id)
    key = _escrow_key(settings, row).read_bytes()
    _break(app, settings, row, fault)
    caplog.set_level(logging.INFO)

    _assert_refused(read(vendor, granted["ana"]), fault)
    r = read(vendor, granted["bob"])
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["email"] == "bob@example.org"

    slug = "integrity" if fault in ("flipped", "altered copy") else "key-unavailable"
    ours = [rec for rec in caplog.records if rec.name.startswith("vrm")]
    assert [(rec.name, rec.levelno, rec.getMessage()) for rec in ours] == [
        ("vrm.keys.service", logging.WARNING, LOGGED[fault]),
        ("vrm.errors", logging.ERROR, f"{slug} on GET /v1/data"),
    ]
    # No traceback, no key, no grant or customer named.
    assert all(rec.exc_info is None for rec in ours)
    for secret in (key.hex(), row.holder_id, ana.id, ana.email):
        assert secret not in caplog.text


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_escrow_leaves_the_customers_own_reads_working(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    vendor: Vendor,
    granted: dict[str, str],
    fault: str,
) -> None:
    _break(app, settings, _escrow_of(app, ana.id), fault)
    r = ana.client.post("/api/v1/session", json={"email": ana.email, "password": ana.password})
    assert r.status_code == 200, r.text
    r = ana.client.get("/api/v1/me/profile")
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "ana@example.org"


def test_a_log_in_does_not_escrow_a_lost_key_again(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, granted: dict[str, str]
) -> None:
    # The known gap (docs/keys.md, "Lost and damaged keys"): only a new
    # grant, or a narrowing, escrows again. Change this test with the fix.
    row = _escrow_of(app, ana.id)
    _break(app, settings, row, "missing")
    r = ana.client.post("/api/v1/session", json={"email": ana.email, "password": ana.password})
    assert r.status_code == 200, r.text
    log_out(ana)
    _assert_refused(read(vendor, granted["ana"]), "missing")
    assert _escrow_of(app, ana.id) == row


@pytest.mark.parametrize("lost", [0, 1])
def test_another_grants_copy_of_the_same_key_still_opens(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    vendor: Vendor,
    other_vendor: Vendor,
    lost: int,
) -> None:
    # Two grants escrow the same profile key; whichever one's escrow key is
    # lost, the other vendor reads on (each copy is tried, not the first
    # one the database returns).
    tokens = [
        tokens_for(ana, vendor, "profile.email:read")["access_token"],
        tokens_for(ana, other_vendor, "profile.email:read")["access_token"],
    ]
    log_out(ana)
    with Session(app.state.engine) as session:
        rows = session.exec(select(KeyEscrow).order_by(col(KeyEscrow.holder_id))).all()
    assert len(rows) == 2
    _break(app, settings, rows[lost], "missing")
    for holder, token in zip((vendor, other_vendor), tokens, strict=True):
        r = read(holder, token)
        assert r.status_code == 200, r.text
        assert r.json()["profile"]["email"] == "ana@example.org"


def test_the_feed_sends_an_unreadable_item_for_a_lost_escrow_and_goes_on(
    app: FastAPI,
    settings: Settings,
    ana: Person,
    bob: Person,
    vendor: Vendor,
    granted: dict[str, str],
) -> None:
    row = _escrow_of(app, ana.id)
    _break(app, settings, row, "missing")
    items, _ = read_feed(vendor, feed_token(vendor))
    by_grant = {item["grant_id"]: item for item in items}
    assert len(items) == len(by_grant) == 2
    ana_item = by_grant.pop(row.holder_id)
    assert (ana_item["type"], ana_item["problem"], ana_item["skipped"]) == (
        "unreadable",
        "urn:vrm:problem:key-unavailable",
        "snapshot",
    )
    assert "data" not in ana_item
    (bob_item,) = by_grant.values()
    assert bob_item["type"] == "snapshot"
    assert bob_item["data"]["profile"]["email"] == "bob@example.org"


# -- vrm keys check -------------------------------------------------------------


def _check_line(settings: Settings, row: KeyEscrow, fault: str) -> str:
    path = _escrow_key(settings, row)
    what = f"escrow key {row.escrow_version} of grant {row.holder_id}"
    if fault == "missing":
        detail = f"missing: {what} is missing ({path})"
    elif fault == "unreadable":
        detail = f"unreadable: {what} cannot be read ({path}: Is a directory)"
    elif fault == "truncated":
        detail = f"unreadable: {what} is damaged ({path}: 16 bytes, not 32)"
    else:
        detail = (
            f"damaged: escrow key {row.escrow_version} does not open its copy of the "
            "profile.email data key (a damaged key file, or an altered key_escrow row)"
        )
    return f"grant {row.holder_id}: {detail}"


def test_vrm_keys_check_passes_when_every_escrow_opens(
    app: FastAPI, settings: Settings, granted: dict[str, str]
) -> None:
    done = vrm(settings, "keys", "check")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "2 customers hold their own root keys\n"
        "every server key, root key and escrow key the server holds is present and opens "
        "its data\n"
    )


@pytest.mark.parametrize("fault", FAULTS)
def test_vrm_keys_check_names_the_grant_whose_escrow_is_broken(
    app: FastAPI, settings: Settings, ana: Person, granted: dict[str, str], fault: str
) -> None:
    row = _escrow_of(app, ana.id)
    _break(app, settings, row, fault)
    done = vrm(settings, "keys", "check")
    assert (done.returncode, done.stderr) == (1, "")
    assert done.stdout == (
        f"{_check_line(settings, row, fault)}\n2 customers hold their own root keys\n"
    )
    assert ana.id not in done.stdout
