"""Log-in, log-out, session cookies and login throttling, through HTTP."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from argon2 import Type, extract_parameters
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Person
from tests.kit import Clock, assert_problem, log_in
from vrm.app import create_app
from vrm.keys import custody
from vrm.settings import Settings

SESSION = "/api/v1/session"
ME = "/api/v1/me"
WRONG_CREDENTIALS = "Email or password is wrong."
TOO_MANY = "Too many failed attempts; try again later."


def sign_up(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    r = client.post("/api/v1/accounts", json={"email": email, "password": password})
    assert r.status_code == 201, r.text
    return r


def session_cookie(response: httpx.Response, name: str) -> Any:
    cookie: SimpleCookie = SimpleCookie()
    cookie.load(response.headers["set-cookie"])
    return cookie[name]


class SpyHasher:
    """Delegates to the real Argon2 checks and records every stored password
    verified against: argon2-cffi's hasher (PasswordHasher has __slots__,
    so its method cannot be patched) and the customer-held form's check
    (vrm/keys/custody.py)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.real_check = custody.check
        self.verified: list[str] = []

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append(stored_hash)
        return bool(self.real.verify(stored_hash, password))

    def check(self, stored: str, password: str) -> bytes | None:
        self.verified.append(stored)
        return self.real_check(stored, password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _argon2_run(stored: str) -> tuple[Type, int, int, int, int]:
    """What one check of ``stored`` costs: Argon2's type, time, memory,
    parallelism and salt length, for either form of a stored password."""
    if custody.is_customer_held(stored):
        cost = custody.cost_of(stored)
        assert cost is not None
        salt = stored.split("$")[4]
        salt_len = len(base64.urlsafe_b64decode(salt + "=" * (-len(salt) % 4)))
        return Type.ID, cost.time_cost, cost.memory_kib, cost.parallelism, salt_len
    p = extract_parameters(stored)
    return p.type, p.time_cost, p.memory_cost, p.parallelism, p.salt_len


# -- log-in and its cookie ----------------------------------------------------


def test_log_in_returns_the_account(client: TestClient) -> None:
    signed_up = sign_up(client, "ana@example.org")
    r = log_in(client, "ana@example.org", PASSWORD)
    assert r.status_code == 200, r.text
    # No recovery key: one is given only by the log-in that moves the
    # customer's root key to them (test_move_to_customer_keys.py).
    assert r.json() == {**signed_up.json(), "recovery_key": None}


def test_log_in_matches_the_email_whatever_its_case(client: TestClient, ana: Person) -> None:
    r = log_in(client, "ANA@Example.Org", PASSWORD)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ana.id


def test_session_cookie_is_httponly_lax_and_site_wide(
    client: TestClient, ana: Person, settings: Settings
) -> None:
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 200, r.text
    morsel = session_cookie(r, settings.session_cookie_name)
    assert morsel.value
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert morsel["max-age"] == str(settings.session_ttl_seconds)


def test_session_cookie_is_not_secure_over_http(
    client: TestClient, ana: Person, settings: Settings
) -> None:
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 200, r.text
    assert not session_cookie(r, settings.session_cookie_name)["secure"]


def test_session_cookie_is_secure_over_https(app: FastAPI, ana: Person, settings: Settings) -> None:
    with TestClient(app, base_url="https://testserver") as https:
        r = log_in(https, ana.email, ana.password)
    assert r.status_code == 200, r.text
    assert session_cookie(r, settings.session_cookie_name)["secure"] is True


def test_wrong_password_and_unknown_email_get_identical_responses(
    app: FastAPI, ana: Person
) -> None:
    with TestClient(app) as first, TestClient(app) as second:
        wrong = log_in(first, ana.email, "not the right passphrase")
        unknown = log_in(second, "nobody@example.org", "not the right passphrase")
    assert_problem(wrong, 401, "unauthenticated", detail=WRONG_CREDENTIALS, instance=SESSION)
    assert wrong.json() == unknown.json()
    assert {k: v for k, v in wrong.headers.items() if k != "date"} == {
        k: v for k, v in unknown.headers.items() if k != "date"
    }


# Both forms of ana's stored password: hers held by the customer, and one
# from before (server-held), each against the unknown email's dummy.
@pytest.mark.parametrize("custody_of_keys", ["customer", "server"])
def test_unknown_email_still_verifies_a_password_hash_of_equal_cost(
    app: FastAPI, client: TestClient, ana: Person, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SpyHasher(app.state.passwords._hasher)
    monkeypatch.setattr(app.state.passwords, "_hasher", spy)
    monkeypatch.setattr(custody, "check", spy.check)
    assert log_in(client, ana.email, "not the right passphrase").status_code == 401
    assert log_in(client, "nobody@example.org", "not the right passphrase").status_code == 401
    assert len(spy.verified) == 2
    real_hash, dummy_hash = spy.verified
    assert dummy_hash != real_hash
    assert _argon2_run(dummy_hash) == _argon2_run(real_hash)


# -- throttling ---------------------------------------------------------------


def fail(client: TestClient, email: str, times: int) -> None:
    for _ in range(times):
        r = log_in(client, email, "not the right passphrase")
        assert r.status_code == 401, r.text


def test_account_is_locked_after_max_failures_even_for_the_right_password(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    r = log_in(client, ana.email, ana.password)
    lockout = settings.login_lockout_seconds
    assert_problem(r, 429, "too-many-requests", detail=TOO_MANY, retry_after=lockout)
    assert r.headers["retry-after"] == str(lockout)


def test_one_failure_short_of_the_limit_does_not_lock(
    client: TestClient, ana: Person, settings: Settings
) -> None:
    fail(client, ana.email, settings.login_max_failures - 1)
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 200, r.text


def test_unknown_email_is_locked_exactly_like_a_known_one(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    fail(client, "nobody@example.org", settings.login_max_failures)
    known = log_in(client, ana.email, "not the right passphrase")
    unknown = log_in(client, "nobody@example.org", "not the right passphrase")
    assert known.status_code == unknown.status_code == 429, unknown.text
    assert known.json() == unknown.json()
    assert known.headers["retry-after"] == unknown.headers["retry-after"]


def test_lockout_ends_after_retry_after(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    locked = log_in(client, ana.email, ana.password)
    assert locked.status_code == 429, locked.text
    clock.advance(int(locked.headers["retry-after"]))
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 200, r.text


def test_lockout_doubles_with_every_further_failure(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    waits = []
    for _ in range(3):
        r = log_in(client, ana.email, "not the right passphrase")
        assert r.status_code == 429, r.text
        waits.append(int(r.headers["retry-after"]))
        clock.advance(waits[-1])
        fail(client, ana.email, 1)
    base = settings.login_lockout_seconds
    assert waits == [base, 2 * base, 4 * base]


def test_successful_log_in_resets_the_account_counter(
    client: TestClient, ana: Person, settings: Settings
) -> None:
    almost = settings.login_max_failures - 1
    fail(client, ana.email, almost)
    assert log_in(client, ana.email, ana.password).status_code == 200
    fail(client, ana.email, almost)
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 200, r.text


@pytest.fixture
def address_limited_app(app: FastAPI, settings: Settings) -> Iterator[FastAPI]:
    """A second app on the same (already emptied) database, allowing only
    three failures per client address and plenty per account."""
    tight = settings.model_copy(
        update={"login_max_failures_per_address": 3, "login_max_failures": 100}
    )
    limited = create_app(tight)
    yield limited
    limited.state.engine.dispose()


def test_address_is_locked_after_failures_across_different_emails(
    address_limited_app: FastAPI,
) -> None:
    with TestClient(address_limited_app) as client:
        sign_up(client, "ana@example.org")
        for email in ("a@example.org", "b@example.org", "ana@example.org"):
            fail(client, email, 1)
        r = log_in(client, "ana@example.org", PASSWORD)
    body = assert_problem(r, 429, "too-many-requests", detail=TOO_MANY, retry_after=ANY)
    assert int(r.headers["retry-after"]) == body["retry_after"] > 0


def test_address_lockout_leaves_other_addresses_alone(address_limited_app: FastAPI) -> None:
    with TestClient(address_limited_app) as client:
        sign_up(client, "ana@example.org")
        for email in ("a@example.org", "b@example.org", "c@example.org"):
            fail(client, email, 1)
        assert log_in(client, "ana@example.org", PASSWORD).status_code == 429
    with TestClient(address_limited_app, client=("203.0.113.7", 50000)) as elsewhere:
        r = log_in(elsewhere, "ana@example.org", PASSWORD)
    assert r.status_code == 200, r.text


# -- log-out ------------------------------------------------------------------


def test_log_out_clears_the_cookie(ana: Person, settings: Settings) -> None:
    r = ana.client.delete(SESSION)
    assert r.status_code == 204, r.text
    morsel = session_cookie(r, settings.session_cookie_name)
    assert morsel.value == ""
    assert morsel["max-age"] == "0"
    assert settings.session_cookie_name not in ana.client.cookies
    assert ana.client.get(ME).status_code == 401


def test_logged_out_token_no_longer_works_when_replayed(
    app: FastAPI, ana: Person, settings: Settings
) -> None:
    name = settings.session_cookie_name
    token = ana.client.cookies[name]
    with TestClient(app, cookies={name: token}) as replay:
        assert replay.get(ME).status_code == 200
        assert ana.client.delete(SESSION).status_code == 204
        r = replay.get(ME)
    assert r.status_code == 401, r.text


def test_log_out_ends_only_that_session(app: FastAPI, ana: Person) -> None:
    with TestClient(app) as phone:
        assert log_in(phone, ana.email, ana.password).status_code == 200
        assert ana.client.delete(SESSION).status_code == 204
        r = phone.get(ME)
    assert r.status_code == 200, r.text


def test_log_out_without_a_session_succeeds(client: TestClient) -> None:
    r = client.delete(SESSION)
    assert r.status_code == 204, r.text


# -- secrets stay out of logs and responses -----------------------------------


def test_passwords_and_tokens_never_reach_the_logs(
    client: TestClient, ana: Person, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "a wrong guess at the passphrase"
    new = "a brand new passphrase for ana"
    assert log_in(client, ana.email, wrong).status_code == 401
    assert log_in(client, ana.email, ana.password).status_code == 200
    first_token = client.cookies[settings.session_cookie_name]
    r = client.put(
        "/api/v1/me/password", json={"current_password": ana.password, "new_password": new}
    )
    assert r.status_code == 204, r.text
    second_token = client.cookies[settings.session_cookie_name]
    assert first_token != second_token
    logged = caplog.text + "\n".join(
        f"{rec.getMessage()} {rec.args!r} {rec.exc_text or ''}" for rec in caplog.records
    )
    for secret in (wrong, ana.password, new, first_token, second_token):
        assert secret not in logged


def test_no_response_body_echoes_a_password(client: TestClient) -> None:
    password = "ana's long secret passphrase"
    short = "tiny secret"
    responses = [
        client.post("/api/v1/accounts", json={"email": "ana@example.org", "password": password}),
        client.post("/api/v1/accounts", json={"email": "bo@example.org", "password": short}),
        log_in(client, "ana@example.org", "a wrong guess at it"),
        log_in(client, "ana@example.org", password),
        client.put(
            "/api/v1/me/password", json={"current_password": password, "new_password": short}
        ),
        client.put(
            "/api/v1/me/password",
            json={"current_password": "a wrong guess at it", "new_password": password + "!"},
        ),
    ]
    assert [r.status_code for r in responses] == [201, 422, 401, 200, 422, 403]
    for r in responses:
        for secret in (password, short, "a wrong guess at it"):
            assert secret not in r.text
