"""The customer's sessions: listed with their devices, ended one by one,
never showing a token, and hidden from everyone else."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter
from sqlmodel import Session

from tests import kit
from tests.conftest import PASSWORD, Person
from tests.consent.conftest import decide, read_form, register_vendor, start
from tests.kit import Clock, assert_problem
from vrm.accounts import sessions
from vrm.accounts.models import LoginSession
from vrm.accounts.sessions import LAST_USED_EVERY
from vrm.migrate import alembic_config
from vrm.settings import Settings

ME = "/api/v1/me"
SESSIONS = f"{ME}/sessions"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
START = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def iso(moment: datetime) -> Any:
    return TypeAdapter(datetime).dump_python(moment, mode="json")


def assert_not_found(r: httpx.Response, session_id: str) -> None:
    assert_problem(
        r, 404, "not-found", detail="No such session.", instance=f"{SESSIONS}/{session_id}"
    )


@dataclass
class Device:
    """One logged-in client of a customer."""

    client: TestClient
    token: str
    id: str


@pytest.fixture
def clock_at_start(clock: Clock) -> Clock:
    clock.now = START
    return clock


@pytest.fixture
def clients(app: FastAPI) -> Iterator[list[TestClient]]:
    opened: list[TestClient] = []
    yield opened
    for c in opened:
        c.close()


@pytest.fixture
def log_in_on(app: FastAPI, settings: Settings, clients: list[TestClient]) -> Any:
    """Log ``email`` in from a new client that sends ``user_agent``."""

    def log_in(email: str, user_agent: str, password: str = PASSWORD) -> Device:
        c = TestClient(app, headers={"User-Agent": user_agent})
        clients.append(c)
        r = kit.log_in(c, email, password)
        assert r.status_code == 200, r.text
        token = c.cookies[settings.session_cookie_name]
        return Device(c, token, row_of(app, token).id)

    return log_in


def sign_up(app: FastAPI, email: str, password: str = PASSWORD) -> None:
    with TestClient(app) as c:
        r = c.post("/api/v1/accounts", json={"email": email, "password": password})
    assert r.status_code == 201, r.text


def row_of(app: FastAPI, token: str) -> LoginSession:
    with Session(app.state.engine) as db:
        row = db.get(LoginSession, app.state.vault.token_hash(token))
        assert row is not None
        db.expunge(row)
        return row


def listed(
    device: Device, name: str, *, at: datetime, used: datetime, ttl: int, current: bool
) -> dict[str, Any]:
    return {
        "id": device.id,
        "device": name,
        "created_at": iso(at),
        "last_used_at": iso(used),
        "expires_at": iso(at + timedelta(seconds=ttl)),
        "current": current,
    }


# -- listing ------------------------------------------------------------------


def test_sessions_from_two_clients_are_listed_with_their_devices(
    app: FastAPI, settings: Settings, clock_at_start: Clock, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    clock_at_start.advance(60)
    phone = log_in_on("ana@example.org", IPHONE)
    ttl = settings.session_ttl_seconds
    later = START + timedelta(seconds=60)

    r = laptop.client.get(SESSIONS)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            listed(phone, "Safari on iOS", at=later, used=later, ttl=ttl, current=False),
            listed(laptop, "Firefox on Linux", at=START, used=START, ttl=ttl, current=True),
        ]
    }
    r = phone.client.get(SESSIONS)
    assert [(s["id"], s["current"]) for s in r.json()["items"]] == [
        (phone.id, True),
        (laptop.id, False),
    ]


def test_the_login_page_records_the_device_too(
    app: FastAPI, settings: Settings, clock_at_start: Clock, clients: list[TestClient]
) -> None:
    sign_up(app, "ana@example.org")
    browser = TestClient(app, headers={"User-Agent": IPHONE})
    clients.append(browser)
    form = read_form(browser.get("/login").text)
    r = browser.post(
        "/login",
        data={**form.hidden, "email": "ana@example.org", "password": PASSWORD},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    token = browser.cookies[settings.session_cookie_name]
    device = Device(browser, token, row_of(app, token).id)

    r = browser.get(SESSIONS)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            listed(
                device,
                "Safari on iOS",
                at=START,
                used=START,
                ttl=settings.session_ttl_seconds,
                current=True,
            )
        ]
    }


def test_expired_sessions_are_not_listed_and_cannot_be_ended(
    app: FastAPI, settings: Settings, clock_at_start: Clock, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    old = log_in_on("ana@example.org", FIREFOX)
    clock_at_start.advance(settings.session_ttl_seconds - 10)
    new = log_in_on("ana@example.org", IPHONE)
    clock_at_start.advance(20)

    r = new.client.get(SESSIONS)

    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["items"]] == [new.id]
    r = new.client.delete(f"{SESSIONS}/{old.id}")
    assert_not_found(r, old.id)


def test_the_export_can_ask_for_the_expired_sessions_too(
    app: FastAPI, settings: Settings, clock_at_start: Clock, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    old = log_in_on("ana@example.org", FIREFOX)
    clock_at_start.advance(settings.session_ttl_seconds - 10)
    new = log_in_on("ana@example.org", IPHONE)
    clock_at_start.advance(20)
    customer_id = row_of(app, new.token).customer_id

    with Session(app.state.engine) as db:
        held = sessions.sessions_of(
            session=db, vault=app.state.vault, customer_id=customer_id, include_expired=True
        )

    assert [(s.id, s.device, s.current) for s in held] == [
        (new.id, "Safari on iOS", False),
        (old.id, "Firefox on Linux", False),
    ]


def test_listing_without_a_session_is_401(client: TestClient) -> None:
    r = client.get(SESSIONS)
    assert_problem(r, 401, "unauthenticated", detail="Log in first (POST /api/v1/session).")


def test_neither_the_token_nor_its_hash_is_ever_shown(app: FastAPI, log_in_on: Any) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    phone = log_in_on("ana@example.org", IPHONE)

    r = laptop.client.get(SESSIONS)

    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 2
    for device in (laptop, phone):
        digest = app.state.vault.token_hash(device.token)
        for shown in (
            device.token,
            digest.hex(),
            base64.b64encode(digest).decode(),
            base64.urlsafe_b64encode(digest).decode().rstrip("="),
        ):
            assert shown not in r.text
        assert device.id != digest.hex()[:32]


def test_the_device_is_stored_sealed_and_padded_to_one_length(app: FastAPI, log_in_on: Any) -> None:
    sign_up(app, "ana@example.org")
    short = log_in_on("ana@example.org", "curl/8.5.0")
    long = log_in_on(
        "ana@example.org",
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko)"
        " SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36",
    )
    rows = [row_of(app, d.token) for d in (short, long)]
    r = short.client.get(SESSIONS)
    assert {s["device"] for s in r.json()["items"]} == {"curl", "Samsung Internet on Android"}
    stored = [row.device_ct for row in rows]
    assert None not in stored
    assert len({len(ciphertext or b"") for ciphertext in stored}) == 1
    for ciphertext in stored:
        assert b"curl" not in (ciphertext or b"")
        assert b"Samsung" not in (ciphertext or b"")


def test_a_device_copied_to_another_session_is_refused_not_shown(
    app: FastAPI, log_in_on: Any
) -> None:
    """The sealed device is bound to its session (AES-GCM associated data):
    whoever can write the database cannot make one session show another's."""
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    phone = log_in_on("ana@example.org", IPHONE)
    with Session(app.state.engine) as db:
        source = db.get(LoginSession, app.state.vault.token_hash(laptop.token))
        target = db.get(LoginSession, app.state.vault.token_hash(phone.token))
        assert source is not None
        assert target is not None
        target.device_ct = source.device_ct
        db.add(target)
        db.commit()

    r = laptop.client.get(SESSIONS)

    assert_problem(r, 500, "integrity", detail="a stored account record failed its integrity check")
    assert "Firefox" not in r.text


# -- ending one ---------------------------------------------------------------


def test_ending_a_session_makes_its_cookie_fail_and_leaves_the_other(
    app: FastAPI, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    phone = log_in_on("ana@example.org", IPHONE)

    r = laptop.client.delete(f"{SESSIONS}/{phone.id}")

    assert r.status_code == 204, r.text
    assert r.content == b""
    assert "set-cookie" not in r.headers
    r = phone.client.get(ME)
    assert r.status_code == 401, r.text
    assert laptop.client.get(ME).status_code == 200
    assert [s["id"] for s in laptop.client.get(SESSIONS).json()["items"]] == [laptop.id]
    with TestClient(app, cookies={"vrm_session": phone.token}) as replay:
        assert replay.get(ME).status_code == 401


def test_ending_the_current_session_logs_out(
    app: FastAPI, settings: Settings, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    phone = log_in_on("ana@example.org", IPHONE)

    r = laptop.client.delete(f"{SESSIONS}/{laptop.id}")

    assert r.status_code == 204, r.text
    assert r.headers["set-cookie"].startswith(f'{settings.session_cookie_name}=""; ')
    assert "Max-Age=0" in r.headers["set-cookie"]
    with TestClient(app, cookies={settings.session_cookie_name: laptop.token}) as replay:
        r = replay.get(SESSIONS)
    assert r.status_code == 401, r.text
    assert phone.client.get(ME).status_code == 200


def test_ending_an_unknown_or_malformed_id_is_the_same_404(app: FastAPI, log_in_on: Any) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    for session_id in (UNKNOWN_ID, "not-an-id", laptop.id.upper(), laptop.id + "0"):
        r = laptop.client.delete(f"{SESSIONS}/{session_id}")
        assert_not_found(r, session_id)
    assert laptop.client.get(ME).status_code == 200


# -- another customer -----------------------------------------------------------


def test_another_customer_neither_sees_nor_ends_your_sessions(app: FastAPI, log_in_on: Any) -> None:
    sign_up(app, "ana@example.org")
    sign_up(app, "bob@example.org", "another long passphrase")
    ana = log_in_on("ana@example.org", FIREFOX)
    bob = log_in_on("bob@example.org", IPHONE, "another long passphrase")

    r = bob.client.get(SESSIONS)
    assert r.status_code == 200, r.text
    assert [s["id"] for s in r.json()["items"]] == [bob.id]

    theirs = bob.client.delete(f"{SESSIONS}/{ana.id}")
    unknown = bob.client.delete(f"{SESSIONS}/{UNKNOWN_ID}")
    assert unknown.status_code == 404, unknown.text
    assert_not_found(theirs, ana.id)
    assert {k: v for k, v in theirs.headers.items() if k not in ("date", "content-length")} == {
        k: v for k, v in unknown.headers.items() if k not in ("date", "content-length")
    }
    assert ana.client.get(ME).status_code == 200
    assert [s["id"] for s in ana.client.get(SESSIONS).json()["items"]] == [ana.id]


# -- last used ----------------------------------------------------------------


def test_last_used_is_written_when_due_and_not_on_every_request(
    app: FastAPI, clock_at_start: Clock, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    due = int(LAST_USED_EVERY.total_seconds())

    clock_at_start.advance(due - 1)
    assert laptop.client.get(ME).status_code == 200
    assert row_of(app, laptop.token).last_used_at == START

    clock_at_start.advance(1)
    touched = clock_at_start.now
    assert laptop.client.get(ME).status_code == 200
    assert row_of(app, laptop.token).last_used_at == touched

    clock_at_start.advance(due - 1)
    assert laptop.client.get(ME).status_code == 200
    assert row_of(app, laptop.token).last_used_at == touched
    r = laptop.client.get(SESSIONS)
    assert [s["last_used_at"] for s in r.json()["items"]] == [iso(touched)]


def test_a_request_that_updates_last_used_still_answers_from_the_session(
    app: FastAPI, settings: Settings, clock_at_start: Clock, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    clock_at_start.advance(int(LAST_USED_EVERY.total_seconds()))

    r = laptop.client.get(SESSIONS)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            listed(
                laptop,
                "Firefox on Linux",
                at=START,
                used=clock_at_start.now,
                ttl=settings.session_ttl_seconds,
                current=True,
            )
        ]
    }


def test_the_consent_pages_update_last_used_too_and_carry_on(
    app: FastAPI, clock_at_start: Clock, log_in_on: Any
) -> None:
    """The authorization endpoint finds the session through the same check,
    inside the OAuth server's own use of the request's database session."""
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    ana = Person("ana@example.org", PASSWORD, laptop.client, "")
    clock_at_start.advance(int(LAST_USED_EVERY.total_seconds()))

    auth = start(ana, register_vendor(app))

    assert auth.page.status_code == 200, auth.page.text
    assert row_of(app, laptop.token).last_used_at == clock_at_start.now
    decide(ana, auth)
    assert auth.page.status_code == 303, auth.page.text
    assert "code" in auth.query


# -- password change ------------------------------------------------------------


def test_a_password_change_leaves_only_the_callers_renewed_session(
    app: FastAPI, settings: Settings, clock_at_start: Clock, log_in_on: Any
) -> None:
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    phone = log_in_on("ana@example.org", IPHONE)
    clock_at_start.advance(60)

    r = laptop.client.put(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": "a completely new passphrase"},
    )

    assert r.status_code == 204, r.text
    assert phone.client.get(ME).status_code == 401
    token = laptop.client.cookies[settings.session_cookie_name]
    renewed = Device(laptop.client, token, row_of(app, token).id)
    assert renewed.id != laptop.id
    r = laptop.client.get(SESSIONS)
    assert r.json() == {
        "items": [
            listed(
                renewed,
                "Firefox on Linux",
                at=clock_at_start.now,
                used=clock_at_start.now,
                ttl=settings.session_ttl_seconds,
                current=True,
            )
        ]
    }


# -- upgrading --------------------------------------------------------------------


def test_sessions_open_at_the_upgrade_stay_open_and_are_listed(
    app: FastAPI, settings: Settings, log_in_on: Any
) -> None:
    """Migration 0012 gives each session already there an id and a last-used
    time; its device was never recorded."""
    # Server custody: the upgrade goes down to before 0019, which only
    # customers whose root keys the server holds can.
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    sign_up(app, "ana@example.org")
    laptop = log_in_on("ana@example.org", FIREFOX)
    before = row_of(app, laptop.token)
    config = alembic_config(settings)
    previous = ScriptDirectory.from_config(config).get_revision("0012").down_revision
    app.state.engine.dispose()
    command.downgrade(config, str(previous))
    command.upgrade(config, "head")

    after = row_of(app, laptop.token)
    assert after.id != laptop.id
    r = laptop.client.get(SESSIONS)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "items": [
            {
                "id": after.id,
                "device": "Unknown device",
                "created_at": iso(before.created_at),
                "last_used_at": iso(before.created_at),
                "expires_at": iso(before.expires_at),
                "current": True,
            }
        ]
    }
    r = laptop.client.delete(f"{SESSIONS}/{after.id}")
    assert r.status_code == 204, r.text
    assert laptop.client.get(ME).status_code == 401
