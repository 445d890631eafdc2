"""A revocation and a log-in at the same moment (issue 19): the log-in
escrows the customer's live grants again (its documents sealed by field,
or its root key moved to them), the revocation destroys the grant's
escrow. Whichever goes first, a revoked grant is left with no escrowed
key: the revocation changes the grant's row before it ends the escrow, and
the log-in locks the rows before it reads which grants live."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, select

from consent.grants import revocation
from consent.grants import service as grants
from consent.grants.models import Grant
from tests.conftest import Person, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import PROFILE, put
from vrm.keys.models import KeyEscrow
from vrm.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    if settings.is_sqlite:
        pytest.skip("SQLite has one writer at a time: no two transactions interleave")
    return settings.model_copy(update={"key_custody": "customer"})


def test_a_log_in_escrowing_again_waits_for_a_revocation_and_leaves_it_revoked(
    app: FastAPI, settings: Settings, vendor: Vendor
) -> None:
    ana: Person = sign_up_and_log_in(app, "ana@example.org")
    put(ana, "profile", PROFILE)
    grant_id = tokens_for(ana, vendor, "profile.email:read")["grant_id"]
    vault = app.state.vault
    escrow_dir = settings.key_dir_resolved / "escrow" / grant_id
    assert escrow_dir.is_dir()

    with Session(app.state.engine) as revoking:
        grant = revoking.get(Grant, grant_id)
        assert grant is not None
        revocation.revoke(revoking, vault, grant, by="customer")
        # Not committed yet: the log-in's escrow starts now, and must wait.
        done = threading.Event()

        def log_in_escrows() -> None:
            with Session(app.state.engine) as logging_in:
                grants.escrow_live_grants(logging_in, vault, ana.id)
                logging_in.commit()
            done.set()

        worker = threading.Thread(target=log_in_escrows)
        worker.start()
        assert not done.wait(1.0), "the log-in's escrow did not wait for the revocation"
        revoking.commit()
    worker.join(30)
    assert done.is_set()

    with Session(app.state.engine) as session:
        left = session.exec(
            select(KeyEscrow.category).where(col(KeyEscrow.holder_id) == grant_id)
        ).all()
    assert left == []
    assert not escrow_dir.exists() or not any(escrow_dir.iterdir())
