from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Person


def test_signed_up_customer_reads_their_empty_profile(ana: Person) -> None:
    r = ana.client.get("/api/v1/me/profile")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "given_name": None,
        "family_name": None,
        "email": None,
        "phone": None,
        "postal_address": None,
        "birth_date": None,
        "language": None,
    }
    assert r.headers["etag"].startswith('"1-')


def test_what_start_up_made_is_out_of_the_collectors_sight_while_serving(app: FastAPI) -> None:
    # A full collection then walks only what requests made (vrm/app.py).
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with TestClient(app):
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
