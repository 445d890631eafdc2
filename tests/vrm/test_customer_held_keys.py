"""Customer-held root keys (vrm/keys/custody.py): what the password, the
recovery key and a live session open, what a grant's escrow opens while the
customer is away, and that nothing else opens anything."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from tests.conftest import PASSWORD, Person, log_out, sign_up_and_log_in
from tests.consent.conftest import Vendor, decide, start, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import PREFERENCES, PROFILE, add_event, feed_token, put, read_feed
from vrm.accounts.models import Customer, LoginSession
from vrm.keys.models import DataKey, KeyEscrow
from vrm.settings import Settings

RECOVERY_KEY = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")
NEW_PASSWORD = "a brand new long passphrase"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_custody": "customer"})


@pytest.fixture
def ana(app: FastAPI) -> Person:
    person = sign_up_and_log_in(app, "ana@example.org")
    put(person, "profile", PROFILE)
    put(person, "preferences", PREFERENCES)
    add_event(person, occurred_at="2026-11-01T10:00:00Z", notes="a private matter")
    return person


def _customer(app: FastAPI, customer_id: str) -> Customer:
    with Session(app.state.engine) as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def test_sign_up_shows_a_recovery_key_once_and_keeps_no_root_key(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    r = client.post("/api/v1/accounts", json={"email": "ana@example.org", "password": PASSWORD})
    assert r.status_code == 201, r.text
    body = r.json()
    assert RECOVERY_KEY.fullmatch(body["recovery_key"]), body["recovery_key"]
    customer = _customer(app, body["id"])
    assert customer.root_by_password is not None
    assert customer.root_by_recovery is not None
    assert customer.password_hash.startswith("$vrm-kek$")
    # Not in the key store: the key store holds no root key of theirs.
    assert not (settings.key_dir_resolved / "customers" / body["id"]).exists()
    with Session(app.state.engine) as session:
        roots = session.exec(
            select(DataKey.root_version).where(col(DataKey.customer_id) == body["id"])
        ).all()
    assert roots
    assert set(roots) == {0}
    # And the recovery key is nowhere in the database.
    raw = body["recovery_key"].encode()
    for column in (customer.password_hash.encode(), customer.root_by_recovery):
        assert raw not in column


def test_the_customer_reads_and_writes_their_data_in_their_session(ana: Person) -> None:
    r = ana.client.get("/api/v1/me/profile")
    assert r.status_code == 200, r.text
    assert r.json()["email"] == PROFILE["email"]
    assert ana.client.get("/api/v1/me").json()["email"] == "ana@example.org"
    assert len(ana.client.get("/api/v1/me/history").json()["items"]) == 1


def test_a_vendor_reads_what_was_granted_while_the_customer_is_away(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    tokens = tokens_for(ana, vendor, "profile:read")
    log_out(ana)
    r = vendor.client.get("/v1/data", headers=bearer(tokens["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["email"] == PROFILE["email"]
    # The escrow holds the profile's data key alone (each field's key
    # derives from it).
    with Session(app.state.engine) as session:
        held = session.exec(select(KeyEscrow.category)).all()
    assert held == ["profile"]


def test_a_logged_out_customer_is_locked_and_logging_in_again_opens_everything(
    app: FastAPI, ana: Person
) -> None:
    log_out(ana)
    # Nothing in this process holds their root key now.
    assert ana.id not in app.state.vault._roots
    r = ana.client.post("/api/v1/session", json={"email": ana.email, "password": ana.password})
    assert r.status_code == 200, r.text
    assert ana.client.get("/api/v1/me/preferences").json()["dietary"] == ["vegetarian"]


def test_a_session_row_with_its_seal_altered_opens_no_session(app: FastAPI, ana: Person) -> None:
    with Session(app.state.engine) as session:
        row = session.exec(select(LoginSession)).one()
        assert row.root_sealed is not None
        row.root_sealed = row.root_sealed[:-1] + bytes([row.root_sealed[-1] ^ 1])
        session.add(row)
        session.commit()
    app.state.vault.lock(ana.id)
    assert ana.client.get("/api/v1/me/profile").status_code == 401


def test_a_password_change_rewraps_the_root_key(app: FastAPI, ana: Person) -> None:
    before = _customer(app, ana.id)
    r = ana.client.put(
        "/api/v1/me/password",
        json={"current_password": ana.password, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 204, r.text
    after = _customer(app, ana.id)
    assert after.root_by_password != before.root_by_password
    # The recovery key is as it was.
    assert after.root_by_recovery == before.root_by_recovery
    log_out(ana)
    old = ana.client.post("/api/v1/session", json={"email": ana.email, "password": ana.password})
    assert old.status_code == 401
    new = ana.client.post("/api/v1/session", json={"email": ana.email, "password": NEW_PASSWORD})
    assert new.status_code == 200, new.text
    assert ana.client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]


def _sign_up(client: TestClient, email: str) -> str:
    r = client.post("/api/v1/accounts", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    return str(r.json()["recovery_key"])


def test_the_recovery_key_sets_a_new_password_and_is_replaced(client: TestClient) -> None:
    recovery_key = _sign_up(client, "ana@example.org")
    assert (
        client.post(
            "/api/v1/session", json={"email": "ana@example.org", "password": PASSWORD}
        ).status_code
        == 200
    )
    put_r = client.put("/api/v1/me/profile", json=PROFILE)
    assert put_r.status_code == 200, put_r.text
    # Typed by hand: lower case and spaces for dashes do not matter.
    typed = recovery_key.lower().replace("-", " ")
    r = client.post(
        "/api/v1/recovery",
        json={"email": "ana@example.org", "recovery_key": typed, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    new_key = r.json()["recovery_key"]
    assert RECOVERY_KEY.fullmatch(new_key)
    assert new_key != recovery_key
    # Every session ended.
    assert client.get("/api/v1/me").status_code == 401
    r = client.post("/api/v1/session", json={"email": "ana@example.org", "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]
    # The key used is spent.
    again = client.post(
        "/api/v1/recovery",
        json={"email": "ana@example.org", "recovery_key": recovery_key, "new_password": PASSWORD},
    )
    assert again.status_code == 401


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("ana@example.org", "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA"),
        ("ana@example.org", "not a key at all"),
        ("nobody@example.org", None),
    ],
)
def test_a_wrong_recovery_key_or_email_is_one_answer_and_changes_nothing(
    app: FastAPI, client: TestClient, email: str, key: str | None
) -> None:
    recovery_key = _sign_up(client, "ana@example.org")
    before = _customer_by_email(app)
    r = client.post(
        "/api/v1/recovery",
        json={"email": email, "recovery_key": key or recovery_key, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 401
    assert r.json()["detail"] == "Email or recovery key is wrong."
    after = _customer_by_email(app)
    assert (after.password_hash, after.root_by_password, after.root_by_recovery) == (
        before.password_hash,
        before.root_by_password,
        before.root_by_recovery,
    )


def _customer_by_email(app: FastAPI) -> Customer:
    with Session(app.state.engine) as session:
        return session.exec(select(Customer)).one()


def test_a_server_held_customer_has_no_recovery_key(
    app: FastAPI, client: TestClient, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    r = client.post("/api/v1/accounts", json={"email": "ana@example.org", "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert r.json()["recovery_key"] is None
    refused = client.post(
        "/api/v1/recovery",
        json={"email": "ana@example.org", "recovery_key": "A" * 32, "new_password": NEW_PASSWORD},
    )
    assert refused.status_code == 401


def test_the_consent_and_vendor_pages_say_what_this_server_can_read(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "profile.email:read history:write")
    assert auth.form is not None, auth.page.text
    # The one field shared, not the profile around it.
    assert (
        "this server can read your contact email address while this lasts, if you allow "
        "it. It cannot read the rest of your data"
    ) in auth.page.text
    decide(ana, auth)
    (grant,) = ana.client.get("/api/v1/me/grants").json()["items"]
    page = ana.client.get(f"/vendors/{grant['id']}")
    assert page.status_code == 200, page.text
    assert "this server can read your contact email address while it lasts" in page.text
    # A grant of whole categories says so, category by category.
    auth = start(ana, vendor, "profile:read preferences.dietary:read history:read")
    assert auth.form is not None, auth.page.text
    assert (
        "this server can read your whole profile, your dietary needs and your whole history "
        "(the events you marked private too, which the vendor never sees) while this lasts"
    ) in auth.page.text
    assert ana.client.delete(f"/api/v1/me/grants/{grant['id']}").status_code == 204
    ended = ana.client.get(f"/vendors/{grant['id']}").text
    assert "This server can read none of your data for it" in ended


def test_a_customer_whose_keys_the_server_holds_is_told_so(
    app: FastAPI, settings: Settings, vendor: Vendor
) -> None:
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    bob = sign_up_and_log_in(app, "bob@example.org")
    auth = start(bob, vendor, "profile:read")
    assert "This server holds the keys to all your data" in auth.page.text


def test_the_feed_reads_what_each_grant_shares_while_its_customers_are_away(
    app: FastAPI, ana: Person, bob_held: Person, vendor: Vendor
) -> None:
    tokens_for(ana, vendor, "profile:read history:read")
    tokens_for(bob_held, vendor, "preferences:read")
    for person in (ana, bob_held):
        log_out(person)
    token = feed_token(vendor)
    items, _ = read_feed(vendor, token)
    assert [i["type"] for i in items] == ["snapshot", "snapshot"]
    by_what = {tuple(sorted(i["data"])): i["data"] for i in items}
    shared = by_what[("history", "profile")]
    assert shared["profile"]["email"] == PROFILE["email"]
    assert shared["history"][0]["notes"] == "a private matter"
    assert by_what[("preferences",)]["preferences"]["dietary"] == ["vegetarian"]
    # Read from the grants' escrow, each customer's what they shared alone.
    assert PREFERENCES["free"]["team"] not in str(shared)
    assert PROFILE["phone"] not in str(by_what[("preferences",)])


@pytest.fixture
def bob_held(app: FastAPI) -> Person:
    person = sign_up_and_log_in(app, "bob@example.org", "another long passphrase")
    put(person, "profile", PROFILE)
    put(person, "preferences", PREFERENCES)
    return person
