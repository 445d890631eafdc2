"""Customer-held keys on the pages: the recovery key shown once at sign-up,
and the forgotten-password page it opens (/recover), through their forms as
a browser sends them."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.client.web.conftest import form, forms
from tests.conftest import PASSWORD
from tests.kit import log_in
from vrm.settings import Settings

NEW_PASSWORD = "a different horse battery"
KEY = re.compile(r'<code id="recovery-key">([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})</code>')


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"key_custody": "customer"})


def _sign_up(visitor: TestClient, email: str = "new@example.org") -> str:
    page = visitor.get("/signup")
    assert "nobody can open your data again, us included" in page.text
    fields = dict(form(page.text, "/signup").fields)
    fields.update(email=email, password=PASSWORD, password_again=PASSWORD)
    r = visitor.post("/signup", data=fields)
    assert r.status_code == 200, r.text
    found = KEY.search(r.text)
    assert found is not None, r.text
    assert r.headers["cache-control"] == "no-store"
    # Logged in: the page has the navigation and the log-out button.
    assert "/logout" in forms(r.text)
    # Logged in already, as every sign-up is.
    assert visitor.get("/api/v1/me").json()["email"] == email
    return found.group(1)


def _recover(visitor: TestClient, email: str, key: str, password: str = NEW_PASSWORD) -> str:
    page = visitor.get("/recover")
    assert page.status_code == 200, page.text
    fields = dict(form(page.text, "/recover").fields)
    fields.update(email=email, recovery_key=key, new_password=password, new_password_again=password)
    r = visitor.post("/recover", data=fields)
    return r.text if r.status_code == 200 else f"{r.status_code}: {r.text}"


def test_sign_up_shows_the_recovery_key_once(visitor: TestClient) -> None:
    key = _sign_up(visitor)
    # Nowhere to come back to it.
    assert key not in visitor.get("/").text


def test_the_recovery_key_sets_a_new_password_and_shows_the_next_key(
    visitor: TestClient, app: FastAPI
) -> None:
    key = _sign_up(visitor)
    assert 'href="/recover"' in visitor.get("/login").text
    answer = _recover(visitor, "new@example.org", key)
    found = KEY.search(answer)
    assert found is not None, answer
    assert found.group(1) != key
    # Every session ended, this browser's too.
    assert visitor.get("/api/v1/me").status_code == 401
    with TestClient(app) as other:
        assert log_in(other, "new@example.org", PASSWORD).status_code == 401
        assert log_in(other, "new@example.org", NEW_PASSWORD).status_code == 200


def test_a_wrong_recovery_key_says_so_and_changes_nothing(
    visitor: TestClient, app: FastAPI
) -> None:
    _sign_up(visitor)
    answer = _recover(visitor, "new@example.org", "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")
    assert answer.startswith("401: ")
    assert "Email or recovery key is wrong." in answer
    with TestClient(app) as other:
        assert log_in(other, "new@example.org", PASSWORD).status_code == 200


def test_two_different_new_passwords_are_refused(visitor: TestClient) -> None:
    key = _sign_up(visitor)
    page = visitor.get("/recover")
    fields = dict(form(page.text, "/recover").fields)
    fields.update(
        email="new@example.org",
        recovery_key=key,
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD + "!",
    )
    r = visitor.post("/recover", data=fields)
    assert r.status_code == 422
    assert "the two passwords differ" in r.text
