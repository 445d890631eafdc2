"""Existing customers move over at their next log-in (issue 19): a
customer made while the server held root keys gets their own when they
log in with ``key_custody`` "customer", and a recovery key with it, once.
Their data still reads, their live grants still read while they are away,
and the key store keeps no root key of theirs."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from tests.client.web.conftest import form
from tests.conftest import PASSWORD, Person, log_back_in, log_out, sign_up_and_log_in
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import bearer, log_in, vrm
from tests.vendor_api.helpers import PREFERENCES, PROFILE, add_event, put
from tests.vrm.at_rest import EVERYTHING, attack, document, records, take_copy
from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.catalogue import DATA_KEYS
from vrm.keys.models import DataKey, KeyEscrow
from vrm.settings import Settings

RECOVERY_KEY = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")
NEW_PASSWORD = "a brand new long passphrase"


def _person(app: FastAPI, email: str) -> Person:
    person = sign_up_and_log_in(app, email)
    put(person, "profile", PROFILE)
    put(person, "preferences", PREFERENCES)
    add_event(person, occurred_at="2026-11-01T10:00:00Z", notes="a private matter")
    return person


def _roots(app: FastAPI, customer_id: str) -> set[int]:
    with Session(app.state.engine) as session:
        return set(
            session.exec(
                select(DataKey.root_version).where(col(DataKey.customer_id) == customer_id)
            ).all()
        )


def _customer_row(app: FastAPI, customer_id: str) -> Customer:
    with Session(app.state.engine) as session:
        found = session.get(Customer, customer_id)
        assert found is not None
        return found


def _password_hash(app: FastAPI, customer_id: str) -> str:
    return _customer_row(app, customer_id).password_hash


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody to begin with: these customers are from before, and
    # each test changes the setting where the move is to happen.
    return settings.model_copy(update={"key_custody": "server"})


@pytest.fixture
def before(app: FastAPI, settings: Settings, vendor: Vendor) -> dict[str, Any]:
    """ana and bob signed up while the server held root keys; ana shares
    her profile with the vendor. Then the setting changed, both logged
    out."""
    assert settings.key_custody == "server"
    ana = _person(app, "ana@example.org")
    grant = tokens_for(ana, vendor, "profile:read")
    bob = _person(app, "bob@example.org")
    log_out(ana)
    log_out(bob)
    app.state.settings = settings.model_copy(update={"key_custody": "customer"})
    return {"ana": ana, "bob": bob, "grant": grant}


def test_the_first_log_in_after_the_change_answers_a_recovery_key_and_the_next_none(
    before: dict[str, Any],
) -> None:
    ana: Person = before["ana"]
    first = log_back_in(ana)
    recovery_key = first.pop("recovery_key")
    assert RECOVERY_KEY.fullmatch(recovery_key), recovery_key
    assert set(first) == {"id", "email", "created_at"}
    assert (first["id"], first["email"]) == (ana.id, ana.email)
    log_out(ana)
    second = log_back_in(ana)
    assert second == {**first, "recovery_key": None}
    # The account as GET /me shows it has no such field.
    assert ana.client.get("/api/v1/me").json() == first


def test_the_move_is_on_the_customers_audit_log(before: dict[str, Any]) -> None:
    ana: Person = before["ana"]
    log_back_in(ana)
    log_back_in(ana)
    r = ana.client.get("/api/v1/me/access-log", params={"type": "key"})
    assert r.status_code == 200, r.text
    # Once: the second log-in moved nothing.
    assert [i["entry"]["type"] for i in r.json()["items"]] == ["key.moved_to_customer"]


def test_a_moved_customer_reads_their_data_and_the_key_store_keeps_no_root_key_of_theirs(
    app: FastAPI, settings: Settings, before: dict[str, Any]
) -> None:
    ana: Person = before["ana"]
    folder = settings.key_dir_resolved / "customers" / ana.id
    assert folder.is_dir()
    log_back_in(ana)
    assert not folder.exists()
    assert _roots(app, ana.id) == {0}
    assert _password_hash(app, ana.id).startswith("$vrm-kek$")
    assert ana.client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]
    assert ana.client.get("/api/v1/me/preferences").json()["dietary"] == ["vegetarian"]
    assert len(ana.client.get("/api/v1/me/history").json()["items"]) == 1
    # And after logging in again, their password opens it all.
    log_out(ana)
    log_back_in(ana)
    assert ana.client.get("/api/v1/me/preferences").json()["dietary"] == ["vegetarian"]
    # bob has not logged in: his root key is still the server's.
    bob: Person = before["bob"]
    assert (settings.key_dir_resolved / "customers" / bob.id).is_dir()
    assert _roots(app, bob.id) == {1}


def test_a_live_grant_still_reads_while_the_moved_customer_is_away_and_alone_opens_at_rest(
    app: FastAPI, settings: Settings, before: dict[str, Any], vendor: Vendor
) -> None:
    ana: Person = before["ana"]
    log_back_in(ana)
    log_out(ana)
    assert ana.id not in app.state.vault._roots
    r = vendor.client.get("/v1/data", headers=bearer(before["grant"]["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["profile"]["email"] == PROFILE["email"]
    with Session(app.state.engine) as session:
        escrowed = set(session.exec(select(KeyEscrow.category)).all())
    assert escrowed == {"profile"}
    opened = attack(take_copy(app.state.engine, settings.key_dir_resolved))
    assert records(opened, ana.id) == document("profile")
    assert ("root", ana.id) not in opened
    # The control: bob, still server-held, opens entirely.
    assert records(opened, before["bob"].id) == EVERYTHING


def test_the_recovery_key_given_at_the_move_sets_a_new_password(
    before: dict[str, Any],
) -> None:
    ana: Person = before["ana"]
    recovery_key = log_back_in(ana)["recovery_key"]
    log_out(ana)
    r = ana.client.post(
        "/api/v1/recovery",
        json={"email": ana.email, "recovery_key": recovery_key, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
    assert RECOVERY_KEY.fullmatch(r.json()["recovery_key"])
    r = log_in(ana.client, ana.email, NEW_PASSWORD)
    assert r.status_code == 200, r.text
    assert r.json()["recovery_key"] is None
    assert ana.client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]


def test_the_login_page_shows_the_recovery_key_once_then_goes_where_it_was_going(
    app: FastAPI, before: dict[str, Any]
) -> None:
    ana: Person = before["ana"]
    browser = TestClient(app)

    def log_in_on_the_page() -> Any:
        page = browser.get("/login", params={"next": "/data/history?cursor=abc"})
        fields = form(page.text, "/login").data(email=ana.email, password=ana.password)
        return browser.post("/login", data=fields, follow_redirects=False)

    r = log_in_on_the_page()
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    (shown,) = re.findall(r'<code id="recovery-key">([^<]*)</code>', r.text)
    assert RECOVERY_KEY.fullmatch(shown)
    assert '<a href="/data/history?cursor=abc">I have kept it: continue</a>' in r.text
    # Logged in: the session cookie came with the page.
    assert browser.get("/api/v1/me").json()["email"] == ana.email
    # The key works, and the page is not shown again.
    assert browser.delete("/api/v1/session").status_code == 204
    again = log_in_on_the_page()
    assert again.status_code == 303, again.text
    assert again.headers["location"] == "/data/history?cursor=abc"
    r = browser.post(
        "/api/v1/recovery",
        json={"email": ana.email, "recovery_key": shown, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text


def test_with_the_setting_server_a_log_in_moves_nobody(
    app: FastAPI, settings: Settings, before: dict[str, Any]
) -> None:
    app.state.settings = settings
    ana: Person = before["ana"]
    assert log_back_in(ana)["recovery_key"] is None
    assert _roots(app, ana.id) == {1}
    assert _password_hash(app, ana.id).startswith("$argon2id$")


def _assert_still_server_held(app: FastAPI, settings: Settings, ana: Person) -> None:
    assert _roots(app, ana.id) == {1}
    assert _password_hash(app, ana.id).startswith("$argon2id$")
    assert (settings.key_dir_resolved / "customers" / ana.id / "1.key").is_file()
    with Session(app.state.engine) as session:
        customer = session.get(Customer, ana.id)
        assert customer is not None
        assert (customer.root_by_password, customer.root_by_recovery) == (None, None)
        assert session.exec(select(KeyEscrow)).all() == []


def test_a_failed_move_leaves_the_customer_server_held_and_logged_in(
    app: FastAPI,
    settings: Settings,
    before: dict[str, Any],
    vendor: Vendor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ana: Person = before["ana"]

    def fails(*_: object) -> None:
        raise RuntimeError("escrow failed")

    hook = app.state.on_keys_moved
    app.state.on_keys_moved = fails
    with caplog.at_level(logging.WARNING, logger="vrm.accounts.service"):
        assert log_back_in(ana)["recovery_key"] is None
    (record,) = [r for r in caplog.records if r.name == "vrm.accounts.service"]
    assert record.getMessage() == (
        "a customer's root key stays with the server after their log-in: the move failed "
        "(RuntimeError); it is tried again at their next log-in"
    )
    _assert_still_server_held(app, settings, ana)
    assert ana.client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]
    r = vendor.client.get("/v1/data", headers=bearer(before["grant"]["access_token"]))
    assert r.status_code == 200, r.text
    # The next log-in moves them.
    app.state.on_keys_moved = hook
    log_out(ana)
    assert RECOVERY_KEY.fullmatch(log_back_in(ana)["recovery_key"])
    assert _roots(app, ana.id) == {0}


def test_a_data_key_that_does_not_open_leaves_the_customer_server_held(
    app: FastAPI, settings: Settings, before: dict[str, Any]
) -> None:
    ana: Person = before["ana"]
    with Session(app.state.engine) as session:
        row = session.get(DataKey, (ana.id, "history", 1))
        assert row is not None
        row.wrapped = row.wrapped[:-1] + bytes([row.wrapped[-1] ^ 1])
        session.add(row)
        session.commit()
    assert log_back_in(ana)["recovery_key"] is None
    _assert_still_server_held(app, settings, ana)
    assert ana.client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]


def test_a_customer_made_after_the_change_is_not_moved_again(
    app: FastAPI, before: dict[str, Any]
) -> None:
    cy = sign_up_and_log_in(app, "cy@example.org", PASSWORD)
    log_out(cy)
    assert log_back_in(cy)["recovery_key"] is None
    assert _roots(app, cy.id) == {0}


def test_vrm_keys_check_counts_who_holds_the_root_keys_and_checks_the_server_held(
    app: FastAPI, settings: Settings, before: dict[str, Any]
) -> None:
    moved = settings.model_copy(update={"key_custody": "customer"})
    done = vrm(moved, "keys", "check")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "2 customers' root keys are still held by the server; they move to their customers "
        "at their next log-in\n"
        "every server key, root key and escrow key the server holds is present and opens "
        "its data\n"
    )
    log_back_in(before["ana"])
    done = vrm(moved, "keys", "check")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == (
        "1 customer holds their own root key\n"
        "1 customer's root key is still held by the server; it moves to them at their next "
        "log-in\n"
        "every server key, root key and escrow key the server holds is present and opens "
        "its data\n"
    )
    # With the setting back at "server", nobody moves: the count says so.
    done = vrm(settings, "keys", "check")
    assert done.stdout.splitlines()[:2] == [
        "1 customer holds their own root key",
        "1 customer's root key is held by the server",
    ]
    # A broken server-held key is still found, and is still a failure.
    bob: Person = before["bob"]
    (settings.key_dir_resolved / "customers" / bob.id / "1.key").unlink()
    done = vrm(moved, "keys", "check")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0].startswith(f"customer {bob.id}: missing: ")


def test_vrm_keys_rotate_leaves_a_moved_customer_alone_and_says_whom_it_rotated(
    app: FastAPI, settings: Settings, before: dict[str, Any]
) -> None:
    ana: Person = before["ana"]
    log_back_in(ana)
    done = vrm(settings, "keys", "rotate", "--grace", "0")
    assert (done.returncode, done.stderr) == (0, "")
    # bob alone: ana's root key is hers, never in the key store.
    assert done.stdout == (
        f"rotated: 1 customers, {len(DATA_KEYS)} data keys rewrapped, 1 old root key versions "
        "destroyed\n"
    )
    assert _roots(app, ana.id) == {0}
    assert _roots(app, before["bob"].id) == {2}
    assert ana.client.get("/api/v1/me/profile").json()["email"] == PROFILE["email"]


def test_a_log_in_that_finds_the_customer_moved_meanwhile_opens_their_key_and_moves_nothing(
    app: FastAPI, before: dict[str, Any]
) -> None:
    ana: Person = before["ana"]
    with Session(app.state.engine) as session:
        # Read server-held, as a log-in read it before another one moved her.
        stale = session.get(Customer, ana.id)
        assert stale is not None
        assert stale.root_by_password is None
        recovery_key = log_back_in(ana)["recovery_key"]
        moved = _customer_row(app, ana.id)
        root, again = accounts._move_to_customer(
            session=session,
            vault=app.state.vault,
            passwords=app.state.passwords,
            customer=stale,
            password=ana.password,
            on_keys_moved=app.state.on_keys_moved,
        )
        session.commit()
    assert root is not None
    assert again is None
    after = _customer_row(app, ana.id)
    assert (after.password_hash, after.root_by_password, after.root_by_recovery) == (
        moved.password_hash,
        moved.root_by_password,
        moved.root_by_recovery,
    )
    r = ana.client.post(
        "/api/v1/recovery",
        json={"email": ana.email, "recovery_key": recovery_key, "new_password": NEW_PASSWORD},
    )
    assert r.status_code == 200, r.text
