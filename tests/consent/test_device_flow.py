"""The device authorization grant (RFC 8628) for the store's own client,
``vrm-me``, and its tokens on the customer API: the device asks, the
customer answers on /device in their browser, the device polls.

The device is a TestClient without cookies; the browser is the
customer's own, logged in (tests/conftest.py ``ana``, ``bob``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from consent.oauth import first_party
from consent.oauth.models import DeviceAuthorization
from consent.vendors import service as vendor_service
from tests.conftest import Person
from tests.consent.conftest import Vendor, read_form, start, tokens_for
from tests.kit import Clock

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
INVALID_TOKEN = 'Bearer realm="vrm", error="invalid_token"'
CUSTOMER_ROUTES = (
    "/api/v1/me",
    "/api/v1/me/profile",
    "/api/v1/me/preferences",
    "/api/v1/me/history",
    "/api/v1/me/grants",
    "/api/v1/me/export",
    "/api/v1/me/access-log",
    "/api/v1/me/sessions",
)
USER_CODE_LETTERS = set("BCDFGHJKLMNPQRSTVWXZ")


@pytest.fixture
def device(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


def ask(device: TestClient, **form: str) -> httpx.Response:
    return device.post("/oauth/device_authorization", data={"client_id": "vrm-me", **form})


def asked(device: TestClient) -> dict[str, Any]:
    r = ask(device)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def poll(device: TestClient, device_code: str) -> httpx.Response:
    return device.post(
        "/oauth/token",
        data={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": "vrm-me"},
    )


def answer(person: Person, user_code: str, decision: str) -> httpx.Response:
    """The customer opens verification_uri_complete and answers."""
    page = person.client.get("/device", params={"user_code": user_code})
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    assert form.action == "/device"
    return person.client.post(
        "/device", data={**form.hidden, "decision": decision}, follow_redirects=False
    )


def logged_in_device(device: TestClient, person: Person) -> dict[str, Any]:
    started = asked(device)
    r = answer(person, started["user_code"], "approve")
    assert r.status_code == 303, r.text
    r = poll(device, started["device_code"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_invalid_token(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == INVALID_TOKEN
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 401


def test_device_authorization_answers_rfc_8628_codes(device: TestClient) -> None:
    body = asked(device)
    assert set(body) == {
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
        "expires_in",
        "interval",
    }
    user_code = body["user_code"]
    assert len(user_code) == 9
    assert user_code[4] == "-"
    assert set(user_code.replace("-", "")) <= USER_CODE_LETTERS
    assert body["verification_uri"] == "http://127.0.0.1:8000/device"
    assert body["verification_uri_complete"] == (
        f"http://127.0.0.1:8000/device?user_code={user_code}"
    )
    assert body["expires_in"] == 600
    assert body["interval"] == 5


def test_device_codes_are_stored_as_hashes_only(app: FastAPI, device: TestClient) -> None:
    body = asked(device)
    with Session(app.state.engine) as session:
        row = session.exec(select(DeviceAuthorization)).one()
    stored = repr(row.model_dump()).encode()
    assert body["device_code"].encode() not in stored
    assert body["user_code"].replace("-", "").encode() not in stored
    assert row.device_hash == app.state.vault.token_hash(body["device_code"])


def test_metadata_advertises_the_device_endpoint_and_grant(device: TestClient) -> None:
    doc = device.get("/.well-known/oauth-authorization-server").json()
    assert (
        doc["device_authorization_endpoint"] == "http://127.0.0.1:8000/oauth/device_authorization"
    )
    assert DEVICE_GRANT in doc["grant_types_supported"]


def test_approved_device_gets_access_and_refresh_tokens_for_the_customer(
    device: TestClient, ana: Person
) -> None:
    started = asked(device)
    r = poll(device, started["device_code"])
    assert r.status_code == 400
    assert r.json()["error"] == "authorization_pending"
    r = answer(ana, started["user_code"], "approve")
    assert r.status_code == 303
    assert r.headers["location"] == "/device?result=approved"
    assert "connected" in ana.client.get(r.headers["location"]).text
    r = poll(device, started["device_code"])
    assert r.status_code == 200, r.text
    token = r.json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "account"
    assert token["refresh_token"].startswith("vrt_")
    assert r.headers["cache-control"] == "no-store"
    me = device.get("/api/v1/me", headers=bearer(token["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == ana.id
    assert me.json()["email"] == ana.email


def test_the_device_refreshes_with_rotation(device: TestClient, ana: Person) -> None:
    token = logged_in_device(device, ana)
    form = {"grant_type": "refresh_token", "client_id": "vrm-me"}
    r = device.post("/oauth/token", data={**form, "refresh_token": token["refresh_token"]})
    assert r.status_code == 200, r.text
    renewed = r.json()
    assert renewed["refresh_token"] != token["refresh_token"]
    assert device.get("/api/v1/me", headers=bearer(renewed["access_token"])).status_code == 200
    # The old refresh token again: refused, and the whole family ends.
    r = device.post("/oauth/token", data={**form, "refresh_token": token["refresh_token"]})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert_invalid_token(device.get("/api/v1/me", headers=bearer(renewed["access_token"])))


def test_polling_faster_than_the_interval_is_told_to_slow_down(device: TestClient) -> None:
    started = asked(device)
    assert poll(device, started["device_code"]).json()["error"] == "authorization_pending"
    r = poll(device, started["device_code"])
    assert r.status_code == 400
    assert r.json()["error"] == "slow_down"


def test_polling_at_the_interval_stays_pending(device: TestClient, clock: Clock) -> None:
    started = asked(device)
    assert poll(device, started["device_code"]).json()["error"] == "authorization_pending"
    clock.advance(5)
    assert poll(device, started["device_code"]).json()["error"] == "authorization_pending"
    clock.advance(4)
    assert poll(device, started["device_code"]).json()["error"] == "slow_down"
    # Each slow_down adds 5 s (RFC 8628 3.5): 10 s now.
    clock.advance(9)
    assert poll(device, started["device_code"]).json()["error"] == "slow_down"
    clock.advance(15)
    assert poll(device, started["device_code"]).json()["error"] == "authorization_pending"


def test_a_denied_device_gets_access_denied(device: TestClient, ana: Person) -> None:
    started = asked(device)
    r = answer(ana, started["user_code"], "deny")
    assert r.status_code == 303
    assert r.headers["location"] == "/device?result=denied"
    r = poll(device, started["device_code"])
    assert r.status_code == 400
    assert r.json()["error"] == "access_denied"


def test_an_expired_device_code_gets_expired_token(
    device: TestClient, ana: Person, clock: Clock
) -> None:
    started = asked(device)
    clock.advance(601)
    r = poll(device, started["device_code"])
    assert r.status_code == 400
    assert r.json()["error"] == "expired_token"
    # Nor can the customer approve it any more.
    page = ana.client.get("/device", params={"user_code": started["user_code"]})
    assert page.status_code == 400
    assert "not right, or it has expired" in page.text


def test_a_device_code_works_once_and_its_reuse_revokes_the_tokens(
    device: TestClient, ana: Person
) -> None:
    started = asked(device)
    answer(ana, started["user_code"], "approve")
    first = poll(device, started["device_code"])
    assert first.status_code == 200, first.text
    r = poll(device, started["device_code"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert_invalid_token(device.get("/api/v1/me", headers=bearer(first.json()["access_token"])))


def test_an_unknown_device_code_is_invalid_grant(device: TestClient) -> None:
    r = poll(device, "not-a-device-code")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_the_user_code_is_read_whatever_its_case_and_dashes(
    device: TestClient, ana: Person
) -> None:
    started = asked(device)
    typed = started["user_code"].replace("-", " ").lower()
    page = ana.client.get("/device", params={"user_code": typed})
    assert page.status_code == 200, page.text
    assert started["user_code"] in page.text
    assert "vrm-me, your command line asks to use your account" in page.text


def test_the_device_page_needs_a_login_first(device: TestClient) -> None:
    started = asked(device)
    r = device.get("/device", params={"user_code": started["user_code"]}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == ("/login?next=%2Fdevice%3Fuser_code%3D" + started["user_code"])


def test_entering_the_code_leads_to_the_confirmation_by_a_get(
    device: TestClient, ana: Person
) -> None:
    asked_for = asked(device)
    page = ana.client.get("/device")
    form = read_form(page.text)
    r = ana.client.post(
        "/device",
        data={**form.hidden, "user_code": asked_for["user_code"].lower()},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/device?user_code={asked_for['user_code']}"


def test_a_wrong_user_code_is_refused_and_guessing_is_throttled(
    device: TestClient, ana: Person
) -> None:
    asked(device)
    for _ in range(4):
        page = ana.client.get("/device", params={"user_code": "BCDF-GHJK"})
        assert page.status_code == 400
        assert "not right, or it has expired" in page.text
    # The fifth wrong try starts a delay: even the right code waits now.
    assert ana.client.get("/device", params={"user_code": "BCDF-GHJK"}).status_code == 400
    r = ana.client.get("/device", params={"user_code": "BCDF-GHJK"})
    assert r.status_code == 429
    assert "retry-after" in r.headers


def test_the_answer_without_its_csrf_token_is_refused(device: TestClient, ana: Person) -> None:
    started = asked(device)
    r = ana.client.post(
        "/device",
        data={"user_code": started["user_code"], "decision": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert "This form expired" in r.text
    assert poll(device, started["device_code"]).json()["error"] == "authorization_pending"


def test_the_answer_with_another_sessions_csrf_token_is_refused(
    device: TestClient, ana: Person, bob: Person
) -> None:
    started = asked(device)
    bobs = read_form(bob.client.get("/device").text).hidden["csrf"]
    r = ana.client.post(
        "/device",
        data={"csrf": bobs, "user_code": started["user_code"], "decision": "approve"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert poll(device, started["device_code"]).json()["error"] == "authorization_pending"


def test_the_device_page_has_the_strict_page_headers(ana: Person) -> None:
    r = ana.client.get("/device")
    assert r.status_code == 200
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert "<script" not in r.text


# -- who may use the grant and the scope ------------------------------------


def test_a_vendor_cannot_use_the_device_endpoint(device: TestClient, vendor: Vendor) -> None:
    r = device.post("/oauth/device_authorization", data={"client_id": vendor.client_id})
    assert r.status_code in (400, 401)
    assert r.json()["error"] == "invalid_client"
    r = device.post("/oauth/device_authorization", data={"scope": "account"}, auth=vendor.auth)
    assert r.json()["error"] == "invalid_client"


def test_the_device_asks_only_for_its_own_scope(device: TestClient) -> None:
    r = ask(device, scope="profile:read")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


def test_a_vendor_cannot_ask_for_the_account_scope_at_authorize(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "account profile:read")
    assert auth.location is not None, auth.page.text
    assert auth.query["error"] == ["invalid_scope"]


def test_a_vendor_cannot_take_the_account_scope_with_client_credentials(
    vendor: Vendor,
) -> None:
    r = vendor.token(grant_type="client_credentials", scope="account")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


def test_nobody_authenticates_as_the_first_party_client_with_a_secret(
    device: TestClient,
) -> None:
    r = device.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "account"},
        auth=("vrm-me", "guess"),
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


# -- the customer API with a bearer token ------------------------------------


def test_a_vendors_access_token_is_refused_on_every_customer_route(
    device: TestClient, ana: Person, vendor: Vendor
) -> None:
    vendors_token = tokens_for(ana, vendor, "profile:read history:read openid")["access_token"]
    feed_token = vendor.token(grant_type="client_credentials", scope="feed:read").json()
    for path in CUSTOMER_ROUTES:
        assert_invalid_token(device.get(path, headers=bearer(vendors_token)))
        assert_invalid_token(device.get(path, headers=bearer(feed_token["access_token"])))
    # Nor does it write or erase anything.
    r = device.patch(
        "/api/v1/me/profile",
        content=b'{"given_name": "Mallory"}',
        headers={**bearer(vendors_token), "Content-Type": "application/merge-patch+json"},
    )
    assert_invalid_token(r)
    r = device.request(
        "DELETE", "/api/v1/me", json={"password": ana.password}, headers=bearer(vendors_token)
    )
    assert_invalid_token(r)
    assert ana.client.get("/api/v1/me").status_code == 200


def test_a_customers_token_reads_only_that_customer(
    device: TestClient, ana: Person, bob: Person
) -> None:
    ana.client.patch(
        "/api/v1/me/profile",
        json={"given_name": "Ana"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    token = logged_in_device(device, bob)["access_token"]
    assert device.get("/api/v1/me", headers=bearer(token)).json()["id"] == bob.id
    assert device.get("/api/v1/me/profile", headers=bearer(token)).json().get("given_name") != "Ana"
    # Bob's token beside Ana's cookie: the header alone counts.
    r = ana.client.get("/api/v1/me", headers=bearer(token))
    assert r.json()["id"] == bob.id


def test_a_revoked_token_is_refused(device: TestClient, ana: Person) -> None:
    token = logged_in_device(device, ana)
    r = device.post("/oauth/revoke", data={"token": token["refresh_token"], "client_id": "vrm-me"})
    assert r.status_code == 200, r.text
    assert_invalid_token(device.get("/api/v1/me", headers=bearer(token["access_token"])))


def test_an_erased_accounts_token_is_refused(device: TestClient, ana: Person) -> None:
    token = logged_in_device(device, ana)["access_token"]
    r = device.request(
        "DELETE", "/api/v1/me", json={"password": ana.password}, headers=bearer(token)
    )
    assert r.status_code == 204, r.text
    assert_invalid_token(device.get("/api/v1/me", headers=bearer(token)))


@pytest.mark.parametrize("header", ["Bearer vat_nonsense", "Bearer ", "Basic Zm9vOmJhcg=="])
def test_a_bad_authorization_header_is_refused_with_a_challenge(
    device: TestClient, ana: Person, header: str
) -> None:
    r = ana.client.get("/api/v1/me", headers={"Authorization": header})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith('Bearer realm="vrm"')
    assert r.headers["content-type"] == "application/problem+json"


def test_an_expired_access_token_is_refused(device: TestClient, ana: Person, clock: Clock) -> None:
    token = logged_in_device(device, ana)["access_token"]
    clock.advance(timedelta(hours=1).total_seconds())
    assert_invalid_token(device.get("/api/v1/me", headers=bearer(token)))


def test_the_first_party_client_is_registered_once_and_hidden_from_vendor_lists(
    app: FastAPI,
) -> None:
    first_party.register(app.state.engine)  # a second start-up
    with Session(app.state.engine) as session:
        listed = vendor_service.list_vendors(session)
    assert "vrm-me" not in [v.id for v in listed]


@pytest.fixture
def initial_token(app: FastAPI) -> str:
    with Session(app.state.engine) as session:
        return vendor_service.issue_initial_access_token(
            session, app.state.vault, label="impostor", ttl=timedelta(days=1)
        )


@pytest.mark.parametrize(
    "claims",
    [
        {"client_name": "vrm-me"},
        {"client_name": "VRM-ME, your command line"},
        {"client_id": "vrm-me"},
        {"scope": "profile:read account"},
    ],
)
def test_registration_refuses_the_first_party_clients_id_name_and_scope(
    device: TestClient, initial_token: str, claims: dict[str, str]
) -> None:
    body = {
        "client_name": "Shop",
        "redirect_uris": ["https://shop.example/cb"],
        **claims,
    }
    r = device.post(
        "/oauth/register", json=body, headers={"Authorization": f"Bearer {initial_token}"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_client_metadata"


def test_a_password_change_ends_the_device_login(device: TestClient, ana: Person) -> None:
    token = logged_in_device(device, ana)
    r = ana.client.put(
        "/api/v1/me/password",
        json={"current_password": ana.password, "new_password": "a brand new passphrase"},
    )
    assert r.status_code == 204, r.text
    assert_invalid_token(device.get("/api/v1/me", headers=bearer(token["access_token"])))
    r = device.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "vrm-me",
            "refresh_token": token["refresh_token"],
        },
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    # A new device login after the change works.
    again = logged_in_device(device, ana)
    assert device.get("/api/v1/me", headers=bearer(again["access_token"])).status_code == 200
