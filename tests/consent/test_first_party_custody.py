"""The command line's tokens of a customer-held customer
(consent/oauth/first_party.py): they carry the root key as a session
cookie does, sealed under keys only the tokens (and, until the exchange,
the device code) give, and nothing in the database opens it.

The device is a TestClient without cookies; the browser is the
customer's own, logged in. Every bearer read locks the customer first, so
that what opens their data is the token, not their browser's session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from consent.oauth import first_party
from consent.oauth.models import DeviceAuthorization, OAuthToken
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.consent.test_device_flow import (
    answer,
    asked,
    assert_invalid_token,
    bearer,
    logged_in_device,
    poll,
)
from tests.vendor_api.helpers import PROFILE, put
from vrm.crypto import aead
from vrm.keys import custody

REFRESH = {"grant_type": "refresh_token", "client_id": first_party.CLIENT_ID}


@pytest.fixture
def custody_of_keys() -> str:
    # What this module is about, whatever the default.
    return "customer"


@pytest.fixture
def device(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def writer(ana: Person) -> Person:
    put(ana, "profile", PROFILE)
    return ana


def _profile(app: FastAPI, device: TestClient, person: Person, access_token: str) -> Any:
    """The profile as the token reads it, the customer locked first."""
    app.state.vault.lock(person.id)
    return device.get("/api/v1/me/profile", headers=bearer(access_token))


def _token_rows(app: FastAPI) -> list[OAuthToken]:
    with Session(app.state.engine) as session:
        return list(session.exec(select(OAuthToken).order_by(col(OAuthToken.id))).all())


def _device_row(app: FastAPI) -> DeviceAuthorization:
    with Session(app.state.engine) as session:
        return session.exec(select(DeviceAuthorization)).one()


def _flip_last_bit(app: FastAPI, model: Any, column: str) -> None:
    with Session(app.state.engine) as session:
        for row in session.exec(select(model)).all():
            sealed = getattr(row, column)
            assert sealed is not None
            setattr(row, column, sealed[:-1] + bytes([sealed[-1] ^ 1]))
            session.add(row)
        session.commit()


def test_the_device_login_reads_the_profile_the_customer_wrote(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    r = _profile(app, device, writer, token["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["email"] == PROFILE["email"]


def test_a_refreshed_token_reads_the_profile_and_the_old_refresh_token_is_refused(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    r = device.post("/oauth/token", data={**REFRESH, "refresh_token": token["refresh_token"]})
    assert r.status_code == 200, r.text
    renewed = r.json()
    r = _profile(app, device, writer, renewed["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["email"] == PROFILE["email"]
    r = device.post("/oauth/token", data={**REFRESH, "refresh_token": token["refresh_token"]})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"


def test_logging_out_of_the_browser_does_not_end_the_command_lines_login(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    assert writer.client.delete("/api/v1/session").status_code == 204
    assert writer.id not in app.state.vault._roots
    r = _profile(app, device, writer, token["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["email"] == PROFILE["email"]


def test_a_revoked_token_reads_nothing_and_leaves_nothing_unlocked(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    r = _profile(app, device, writer, token["access_token"])
    assert r.status_code == 200, r.text
    assert writer.id in app.state.vault._roots
    r = device.post(
        "/oauth/revoke",
        data={"token": token["refresh_token"], "client_id": first_party.CLIENT_ID},
    )
    assert r.status_code == 200, r.text
    assert writer.id not in app.state.vault._roots
    r = device.get("/api/v1/me/profile", headers=bearer(token["access_token"]))
    assert_invalid_token(r)
    assert writer.id not in app.state.vault._roots


def test_a_copied_device_request_opens_nothing_without_its_device_code(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    started = asked(device)
    assert answer(writer, started["user_code"], "approve").status_code == 303
    row = _device_row(app)
    assert row.root_sealed is not None
    holder = f"device-authorization/{row.device_hash.hex()}"
    with pytest.raises(aead.SealError):
        custody.open_for_device("a guessed device code", writer.id, holder, row.root_sealed)
    # With the device code it opens; and once used, the request holds no seal.
    custody.open_for_device(started["device_code"], writer.id, holder, row.root_sealed)
    assert poll(device, started["device_code"]).status_code == 200
    assert _device_row(app).root_sealed is None


def test_a_copied_token_row_opens_nothing_without_its_tokens(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    (row,) = _token_rows(app)
    assert row.root_by_access is not None
    assert row.root_by_refresh is not None
    for kind, sealed in (
        ("access-token", row.root_by_access),
        ("refresh-token", row.root_by_refresh),
    ):
        for wrong in (token["access_token"] + "x", token["refresh_token"] + "x"):
            with pytest.raises(aead.SealError):
                custody.open_for_credential(wrong, writer.id, row.id, sealed, kind=kind)
    # The refresh token's seal does not open with the access token, nor
    # the other way round.
    with pytest.raises(aead.SealError):
        custody.open_for_credential(
            token["access_token"], writer.id, row.id, row.root_by_refresh, kind="access-token"
        )
    with pytest.raises(aead.SealError):
        custody.open_for_credential(
            token["refresh_token"], writer.id, row.id, row.root_by_access, kind="refresh-token"
        )


def test_an_altered_access_seal_makes_the_token_invalid(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    _flip_last_bit(app, OAuthToken, "root_by_access")
    assert_invalid_token(_profile(app, device, writer, token["access_token"]))
    assert writer.id not in app.state.vault._roots


def test_an_altered_refresh_seal_refuses_the_refresh(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    _flip_last_bit(app, OAuthToken, "root_by_refresh")
    r = device.post("/oauth/token", data={**REFRESH, "refresh_token": token["refresh_token"]})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"


def test_an_altered_device_seal_refuses_the_exchange(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    started = asked(device)
    assert answer(writer, started["user_code"], "approve").status_code == 303
    _flip_last_bit(app, DeviceAuthorization, "root_sealed")
    r = poll(device, started["device_code"])
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_grant"
    assert _token_rows(app) == []


def test_vendor_tokens_carry_no_seal(app: FastAPI, writer: Person, vendor: Vendor) -> None:
    tokens_for(writer, vendor, "profile:read")
    rows = _token_rows(app)
    assert [row.vendor_id for row in rows] == [vendor.client_id]
    assert [(row.root_by_access, row.root_by_refresh) for row in rows] == [(None, None)]


@pytest.mark.parametrize("custody_of_keys", ["server"])
def test_a_server_held_customer_gets_no_seal_and_reads_as_before(
    app: FastAPI, device: TestClient, writer: Person
) -> None:
    token = logged_in_device(device, writer)
    assert _device_row(app).root_key is not None  # the device request cannot know
    assert _device_row(app).root_sealed is None
    r = device.post("/oauth/token", data={**REFRESH, "refresh_token": token["refresh_token"]})
    assert r.status_code == 200, r.text
    assert [(row.root_by_access, row.root_by_refresh) for row in _token_rows(app)] == [
        (None, None),
        (None, None),
    ]
    r = _profile(app, device, writer, r.json()["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["email"] == PROFILE["email"]
