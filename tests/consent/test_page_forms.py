"""The login and consent forms, and the authorization request, sent as no
browser would: a file where text belongs, a field twice, huge or non-numeric
numbers, JSON nested a thousand deep. Each gets 400 on the page with a clear
message and the form again (or the endpoint's documented error), never a
500, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Person
from tests.consent.conftest import (
    ISSUER,
    Authorization,
    Vendor,
    decide,
    location_params,
    read_form,
    start,
)

GRANTS = "/api/v1/me/grants"
SCOPE = "profile.email:read preferences:read"


@pytest.fixture
def page(app: FastAPI, ana: Person, vendor: Vendor) -> Authorization:
    """Ana on the consent page, with a client that answers a server error
    with its 500 instead of raising it into the test."""
    ana.client = TestClient(app, raise_server_exceptions=False, cookies=ana.client.cookies)
    auth = start(ana, vendor, SCOPE)
    assert auth.form is not None, auth.page.text
    return auth


def _post(ana: Person, auth: Authorization, files: Any = None, **changes: Any) -> Any:
    assert auth.form is not None
    body: dict[str, Any] = {
        **auth.form.hidden,
        "allow": ["profile.email:read"],
        "decision": "allow",
        "duration_days": "30",
    }
    body.update(changes)
    body = {k: v for k, v in body.items() if v is not None}
    return ana.client.post("/oauth/authorize", data=body, files=files, follow_redirects=False)


def _the_page_again(ana: Person, r: Any, message: str) -> None:
    """400, the consent page with ``message``, and the form to send again
    (only what was ticked still ticked); no grant."""
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert f'<p class="error" role="alert">{message}</p>' in r.text
    again = read_form(r.text)
    assert set(again.hidden) == {"csrf", "request"}
    assert again.checkboxes == ["preferences:read", "profile.email:read"]
    assert 'value="profile.email:read" checked' in r.text
    assert 'value="preferences:read" checked' not in r.text
    assert ana.client.get(GRANTS).json() == {"items": []}


DAYS = "The form was not filled in correctly: choose for how long from the list (1 to 730 days)."


@pytest.mark.parametrize("days", ["999999999", "99999999999999999999999", "-1", "0", "3.5", "٣"])
def test_a_duration_out_of_range_or_not_a_number_gives_the_page_again(
    ana: Person, page: Authorization, days: str
) -> None:
    _the_page_again(ana, _post(ana, page, duration_days=days), DAYS)


def test_the_page_sent_again_works(ana: Person, vendor: Vendor, page: Authorization) -> None:
    r = _post(ana, page, duration_days="999999999")
    page.form = read_form(r.text)
    decide(ana, page, allow=["profile.email:read"], duration_days="30")
    token = vendor.exchange(location_params(page.location or "")["code"], page.verifier)
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "profile.email:read"


def test_a_file_as_the_csrf_token_gives_the_page_again(ana: Person, page: Authorization) -> None:
    r = _post(ana, page, csrf=None, files={"csrf": ("csrf.txt", b"x" * 43, "text/plain")})
    _the_page_again(ana, r, "The form was not filled in correctly: csrf must be text, not a file.")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("duration_days", "duration_days must be text, not a file"),
        ("allow", "allow must be text, not a file"),
        ("decision", "decision must be text, not a file"),
    ],
)
def test_a_file_in_any_consent_field_gives_the_page_again(
    ana: Person, page: Authorization, field: str, message: str
) -> None:
    # The file comes as well as a text "allow", so the ticks kept are the same.
    kept = {"allow": ["profile.email:read"]} if field == "allow" else {field: None}
    files = {field: ("f.txt", b"30", "text/plain")}
    r = _post(ana, page, files=files, **kept)
    _the_page_again(ana, r, f"The form was not filled in correctly: {message}.")


@pytest.mark.parametrize("field", ["csrf", "decision", "duration_days"])
def test_a_consent_field_sent_twice_gives_the_page_again(
    ana: Person, page: Authorization, field: str
) -> None:
    assert page.form is not None
    value = {**page.form.hidden, "decision": "allow", "duration_days": "30"}[field]
    r = _post(ana, page, **{field: [value, value]})
    message = f"The form was not filled in correctly: {field} was sent more than once."
    _the_page_again(ana, r, message)


def test_a_decision_other_than_allow_or_deny_gives_the_page_again(
    ana: Person, page: Authorization
) -> None:
    r = _post(ana, page, decision="maybe")
    _the_page_again(ana, r, "The form was not filled in correctly: press Allow or Deny.")


def test_a_tick_that_is_no_scope_gives_the_page_again(ana: Person, page: Authorization) -> None:
    r = _post(ana, page, allow=["profile.email:read", "everything"])
    assert r.status_code == 400, r.text
    assert "tick only what the request lists" in r.text
    assert ana.client.get(GRANTS).json() == {"items": []}


def test_more_ticks_than_any_page_has_give_the_page_again(ana: Person, page: Authorization) -> None:
    r = _post(ana, page, allow=["profile.email:read"] * 65)
    message = "The form was not filled in correctly: allow was sent more than 64 times."
    _the_page_again(ana, r, message)


def test_an_overlong_csrf_token_gives_the_page_again(ana: Person, page: Authorization) -> None:
    r = _post(ana, page, csrf="x" * 101)
    message = "The form was not filled in correctly: csrf is longer than 100 characters."
    _the_page_again(ana, r, message)


def test_a_file_as_the_request_gives_the_error_page(ana: Person, page: Authorization) -> None:
    r = _post(ana, page, request=None, files={"request": ("r.txt", b"a=b", "text/plain")})
    assert r.status_code == 400, r.text
    assert (
        "The form was not filled in correctly: request must be text, not a file. Start again."
        in r.text
    )
    assert ana.client.get(GRANTS).json() == {"items": []}


def test_the_error_message_never_echoes_a_value(ana: Person, page: Authorization) -> None:
    r = _post(ana, page, duration_days="31337000000")
    assert r.status_code == 400
    assert "31337000000" not in r.text


# -- the login page ---------------------------------------------------------------


@pytest.fixture
def login(app: FastAPI) -> tuple[TestClient, dict[str, str]]:
    browser = TestClient(app, raise_server_exceptions=False)
    form = read_form(browser.get("/login", params={"next": "/oauth/authorize?x=1"}).text)
    return browser, form.hidden


def _login_page_again(r: Any, message: str, email: str = "") -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert f'<p class="error" role="alert">{message}</p>' in r.text
    form = read_form(r.text)
    assert form.hidden["next"] == "/oauth/authorize?x=1"
    assert f'name="email" autocomplete="username" required value="{email}"' in r.text
    assert "vrm_session" not in r.cookies


def test_a_file_as_the_password_gives_the_login_page_again(
    ana: Person, login: tuple[TestClient, dict[str, str]]
) -> None:
    browser, hidden = login
    r = browser.post(
        "/login",
        data={**hidden, "email": ana.email},
        files={"password": ("p.txt", ana.password.encode(), "text/plain")},
        follow_redirects=False,
    )
    message = "The form was not filled in correctly: password must be text, not a file."
    _login_page_again(r, message, ana.email)


def test_an_email_sent_twice_gives_the_login_page_again(
    ana: Person, login: tuple[TestClient, dict[str, str]]
) -> None:
    browser, hidden = login
    r = browser.post(
        "/login",
        data={**hidden, "email": [ana.email, "bob@example.org"], "password": ana.password},
        follow_redirects=False,
    )
    _login_page_again(r, "The form was not filled in correctly: email was sent more than once.")


def test_an_overlong_email_gives_the_login_page_again(
    ana: Person, login: tuple[TestClient, dict[str, str]]
) -> None:
    browser, hidden = login
    r = browser.post(
        "/login",
        data={**hidden, "email": "a" * 321, "password": ana.password},
        follow_redirects=False,
    )
    message = "The form was not filled in correctly: email is longer than 320 characters."
    _login_page_again(r, message)


def test_a_password_is_never_echoed_on_the_login_page(
    ana: Person, login: tuple[TestClient, dict[str, str]]
) -> None:
    browser, hidden = login
    secret = "s3cret-" * 200
    r = browser.post(
        "/login",
        data={**hidden, "email": ana.email, "password": secret},
        follow_redirects=False,
    )
    assert r.status_code == 400, r.text
    assert "s3cret-" not in r.text
    assert "password is longer than 1024 characters" in r.text


# -- the authorization request ------------------------------------------------------


def _invalid_details(auth: Authorization, why: str) -> None:
    assert auth.page.status_code == 303, auth.page.text
    assert location_params(auth.location or "") == {
        "error": "invalid_authorization_details",
        "error_description": f"authorization_details is not JSON this server reads: {why}",
        "state": auth.params["state"],
        "iss": ISSUER,
    }


def test_authorization_details_nested_a_thousand_deep_are_invalid(
    ana: Person, vendor: Vendor
) -> None:
    deep = "[" * 1000 + "]" * 1000
    auth = start(ana, vendor, "profile.email:read", authorization_details=deep)
    _invalid_details(auth, "JSON nested deeper than 32 levels")


def test_authorization_details_with_a_non_finite_number_are_invalid(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "profile.email:read", authorization_details='[{"x": 1e999}]')
    _invalid_details(auth, "a number is too large to store")
