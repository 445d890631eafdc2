"""Login throttling under attack: parallel bursts, lockout as a weapon,
growing delays, and what a success forgives. Through HTTP, on both
backends. The basic lockout rules are in test_sessions.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Person
from tests.consent.conftest import read_form
from tests.kit import Clock
from tests.vrm.test_sessions import fail, log_in, sign_up
from vrm.app import create_app
from vrm.keys import custody
from vrm.settings import Settings

WRONG = "not the right passphrase"
BURST = 40
# The owner's own device, somewhere else than the attacker.
ELSEWHERE = ("203.0.113.7", 50000)


class SlowHasher:
    """The real Argon2 checks, made slow and counted: a production hash
    takes a good part of a second, which is the window a burst races in.
    Both forms of a stored password: argon2-cffi's hasher (server-held
    customers, and the unknown email's dummy) and the customer-held form's
    check (vrm/keys/custody.py)."""

    def __init__(self, real: Any, seconds: float) -> None:
        self.real = real
        self.real_check = custody.check
        self.seconds = seconds
        self.verified = 0
        self._lock = threading.Lock()

    def _slowly(self) -> None:
        with self._lock:
            self.verified += 1
        time.sleep(self.seconds)

    def verify(self, stored_hash: str, password: str) -> bool:
        self._slowly()
        return bool(self.real.verify(stored_hash, password))

    def check(self, stored: str, password: str) -> bytes | None:
        self._slowly()
        return self.real_check(stored, password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def slow(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> SlowHasher:
    spy = SlowHasher(app.state.passwords._hasher, 0.2)
    monkeypatch.setattr(app.state.passwords, "_hasher", spy)
    monkeypatch.setattr(custody, "check", spy.check)
    return spy


def burst(client: TestClient, body: dict[str, str], n: int = BURST) -> list[int]:
    """n log-ins at once from one address; their statuses, sorted."""
    gate = threading.Barrier(n)

    def one(_: int) -> int:
        gate.wait()
        return client.post("/api/v1/session", json=body).status_code

    with ThreadPoolExecutor(n) as pool:
        return sorted(pool.map(one, range(n)))


def test_a_parallel_burst_gets_only_the_allowed_number_of_guesses(
    client: TestClient, ana: Person, settings: Settings, slow: SlowHasher
) -> None:
    statuses = burst(client, {"email": ana.email, "password": WRONG})
    allowed = settings.login_max_failures
    assert statuses == [401] * allowed + [429] * (BURST - allowed)
    assert slow.verified == allowed


def test_parallel_right_passwords_count_while_in_flight(
    client: TestClient, ana: Person, settings: Settings, slow: SlowHasher
) -> None:
    """An attempt counts until its hash is done, so a burst is bounded even
    with the right password; once they are done, the count is cleared."""
    slow.seconds = 1.0
    statuses = burst(client, {"email": ana.email, "password": ana.password}, n=20)
    allowed = settings.login_max_failures
    assert statuses == [200] * allowed + [429] * (20 - allowed)
    assert slow.verified == allowed
    slow.seconds = 0
    assert log_in(client, ana.email, ana.password).status_code == 200


@pytest.fixture
def roomy_app(app: FastAPI, settings: Settings) -> Iterator[FastAPI]:
    """A second app on the same (already emptied) database whose limits no
    test here reaches."""
    roomy = settings.model_copy(
        update={"login_max_failures": 1000, "login_max_failures_per_address": 1000}
    )
    limited = create_app(roomy)
    yield limited
    limited.state.engine.dispose()


def test_log_ins_racing_each_other_all_get_in(roomy_app: FastAPI) -> None:
    """Each log-in locks the counter rows twice (to reserve, then to settle)
    while others do the same: in one order, or PostgreSQL kills one of two
    with a deadlock, a 500. Four accounts, as the counters' order is that of
    their keyed hashes."""
    people = [f"p{n}@example.org" for n in range(4)]
    with TestClient(roomy_app) as client:
        for email in people:
            sign_up(client, email)
        gate = threading.Barrier(12)

        def run(n: int) -> list[int]:
            gate.wait()
            return [log_in(client, people[n % 4], PASSWORD).status_code for _ in range(8)]

        with ThreadPoolExecutor(12) as pool:
            statuses = [s for batch in pool.map(run, range(12)) for s in batch]
    assert statuses == [200] * 96


def test_a_parallel_burst_of_password_confirmations_is_bounded_too(
    ana: Person, settings: Settings, slow: SlowHasher
) -> None:
    gate = threading.Barrier(BURST)

    def one(_: int) -> int:
        gate.wait()
        body = {"current_password": WRONG, "new_password": "a completely new passphrase"}
        return ana.client.put("/api/v1/me/password", json=body).status_code

    with ThreadPoolExecutor(BURST) as pool:
        statuses = sorted(pool.map(one, range(BURST)))
    allowed = settings.login_max_failures
    assert statuses == [403] * allowed + [429] * (BURST - allowed)
    assert slow.verified == allowed


def test_the_owner_gets_in_from_another_address_during_an_attack(
    app: FastAPI, client: TestClient, ana: Person, settings: Settings
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    attack = [log_in(client, ana.email, WRONG).status_code for _ in range(20)]
    assert attack == [429] * 20
    # The attacker's address is held off even with the right password...
    assert log_in(client, ana.email, ana.password).status_code == 429
    # ...while the owner, on their own device, logs in at once.
    with TestClient(app, client=ELSEWHERE) as phone:
        r = log_in(phone, ana.email, ana.password)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == ana.id


def test_the_owner_gets_in_from_another_address_after_a_parallel_burst(
    app: FastAPI, client: TestClient, ana: Person, slow: SlowHasher
) -> None:
    burst(client, {"email": ana.email, "password": WRONG})
    slow.seconds = 0
    with TestClient(app, client=ELSEWHERE) as phone:
        r = log_in(phone, ana.email, ana.password)
    assert r.status_code == 200, r.text


def test_delays_keep_growing_while_the_attacker_keeps_waiting_them_out(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    """Waiting out each delay does not start a fresh window of free guesses:
    the counter forgets only after a whole window without an attempt."""
    fail(client, ana.email, settings.login_max_failures)
    waits = []
    for _ in range(9):
        r = log_in(client, ana.email, WRONG)
        assert r.status_code == 429, r.text
        waits.append(int(r.headers["retry-after"]))
        clock.advance(waits[-1])
        fail(client, ana.email, 1)
    base, cap = settings.login_lockout_seconds, settings.login_lockout_max_seconds
    assert waits == [min(base * 2**n, cap) for n in range(9)]
    assert waits[-2:] == [cap, cap]


def test_a_quiet_window_after_the_delay_forgives_the_failures(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    r = log_in(client, ana.email, WRONG)
    clock.advance(int(r.headers["retry-after"]) + settings.login_window_seconds + 1)
    fail(client, ana.email, settings.login_max_failures - 1)
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 200, r.text


@pytest.fixture
def shared_address_app(app: FastAPI, settings: Settings) -> Iterator[FastAPI]:
    """A second app on the same (already emptied) database that allows only
    three failures per client address."""
    tight = settings.model_copy(update={"login_max_failures_per_address": 3})
    limited = create_app(tight)
    yield limited
    limited.state.engine.dispose()


def test_successful_log_ins_do_not_count_against_a_shared_address(
    shared_address_app: FastAPI,
) -> None:
    """Many people behind one NAT log in all day."""
    with TestClient(shared_address_app) as client:
        people = [f"p{n}@example.org" for n in range(6)]
        for email in people:
            sign_up(client, email)
        statuses = [log_in(client, email, PASSWORD).status_code for email in people]
    assert statuses == [200] * 6


def test_logging_in_to_ones_own_account_does_not_forgive_an_address(
    shared_address_app: FastAPI,
) -> None:
    """An attacker with an account of their own cannot launder the failures
    of their address by logging in to it between guesses."""
    with TestClient(shared_address_app) as client:
        sign_up(client, "mallory@example.org")
        sign_up(client, "ana@example.org")
        statuses = []
        for victim in ("a@example.org", "b@example.org", "ana@example.org"):
            statuses.append(log_in(client, victim, WRONG).status_code)
            statuses.append(log_in(client, "mallory@example.org", PASSWORD).status_code)
        r = log_in(client, "ana@example.org", PASSWORD)
    assert statuses == [401, 200, 401, 200, 401, 429]
    assert r.status_code == 429, r.text


def test_a_success_forgives_only_its_own_account_at_that_address(
    app: FastAPI, client: TestClient, ana: Person, bob: Person, settings: Settings
) -> None:
    almost = settings.login_max_failures - 1
    fail(client, ana.email, almost)
    fail(client, bob.email, almost)
    assert log_in(client, ana.email, ana.password).status_code == 200
    fail(client, ana.email, almost)
    fail(client, bob.email, 1)
    r = log_in(client, bob.email, bob.password)
    assert r.status_code == 429, r.text
    assert log_in(client, ana.email, ana.password).status_code == 200


def test_throttled_answers_say_when_to_retry(
    client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures)
    clock.advance(10)
    r = log_in(client, ana.email, ana.password)
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == str(settings.login_lockout_seconds - 10)


def page_log_in(browser: TestClient, email: str, password: str) -> Any:
    form = read_form(browser.get("/login").text)
    return browser.post(
        "/login",
        data={**form.hidden, "email": email, "password": password},
        follow_redirects=False,
    )


def test_the_login_page_counts_with_the_api_and_lets_the_owner_in_elsewhere(
    app: FastAPI, client: TestClient, ana: Person, settings: Settings, clock: Clock
) -> None:
    fail(client, ana.email, settings.login_max_failures - 1)
    assert page_log_in(client, ana.email, WRONG).status_code == 401
    r = page_log_in(client, ana.email, ana.password)
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == str(settings.login_lockout_seconds)
    assert "Too many failed attempts; try again later." in r.text
    assert settings.session_cookie_name not in r.cookies
    with TestClient(app, client=ELSEWHERE) as phone:
        r = page_log_in(phone, ana.email, ana.password)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert settings.session_cookie_name in r.cookies
