"""Home, sign-up, log-out and password pages: each through its form as a
browser sends it, and each way the form can be refused."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.client.web.conftest import Customer, form, forms
from tests.conftest import PASSWORD
from tests.kit import log_in
from vrm.settings import Settings

NEW_PASSWORD = "a different horse battery"


def _signup_form(visitor: TestClient) -> list[tuple[str, str]]:
    r = visitor.get("/signup")
    assert r.status_code == 200, r.text
    return form(r.text, "/signup").fields


def test_home_logged_out_links_to_log_in_and_sign_up(visitor: TestClient) -> None:
    r = visitor.get("/")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    links = re.findall(r'<a href="([^"]+)"', r.text)
    assert "/login" in links
    assert "/signup" in links
    assert "/data/profile" not in links
    assert "/logout" not in forms(r.text)


def test_home_logged_in_shows_navigation_and_email(ana: Customer) -> None:
    r = ana.http.get("/")
    assert r.status_code == 200, r.text
    assert "ana@example.org" in r.text
    links = re.findall(r'<a href="([^"]+)"', r.text)
    for page in ("/data/profile", "/data/preferences", "/data/history"):
        assert page in links
    for page in ("/account/password", "/account/export", "/account/delete"):
        assert page in links
    assert '<a href="/" aria-current="page">Home</a>' in r.text
    assert forms(r.text)["/logout"].value("csrf")


def test_sign_up_opens_a_session_and_goes_home_past_the_recovery_key(
    visitor: TestClient, app: FastAPI
) -> None:
    fields = dict(_signup_form(visitor))
    fields.update(email="new@example.org", password=PASSWORD, password_again=PASSWORD)
    r = visitor.post("/signup", data=fields)
    # The answer shows the recovery key, kept nowhere (test_recovery.py),
    # and goes on home from there.
    assert r.status_code == 200, r.text
    assert '<p><a href="/">I have kept it: continue</a></p>' in r.text
    cookie = r.headers.get_list("set-cookie")
    session = [c for c in cookie if c.startswith("vrm_session=")]
    assert len(session) == 1
    assert "HttpOnly" in session[0]
    assert "SameSite=lax" in session[0]
    assert "Path=/" in session[0]
    assert visitor.get("/api/v1/me").json()["email"] == "new@example.org"
    assert "new@example.org" in visitor.get("/").text
    # The account works with its password, as any other.
    with TestClient(app) as other:
        assert log_in(other, "new@example.org", PASSWORD).status_code == 200


def test_sign_up_with_server_held_keys_lands_home(
    visitor: TestClient, app: FastAPI, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"key_custody": "server"})
    fields = dict(_signup_form(visitor))
    fields.update(email="new@example.org", password=PASSWORD, password_again=PASSWORD)
    r = visitor.post("/signup", data=fields)
    # No recovery key to show: the server holds the root key.
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert visitor.get("/api/v1/me").json()["email"] == "new@example.org"


def test_sign_up_without_the_csrf_cookie_is_refused(visitor: TestClient, app: FastAPI) -> None:
    fields = dict(_signup_form(visitor))
    fields.update(email="new@example.org", password=PASSWORD, password_again=PASSWORD)
    with TestClient(app, follow_redirects=False) as elsewhere:
        r = elsewhere.post("/signup", data=fields)
    assert r.status_code == 403, r.text
    assert "This form expired or did not come from this site" in r.text
    with TestClient(app) as other:
        assert log_in(other, "new@example.org", PASSWORD).status_code == 401


def test_sign_up_with_a_token_not_its_cookie_is_refused(visitor: TestClient, app: FastAPI) -> None:
    fields = dict(_signup_form(visitor))
    fields.update(email="new@example.org", password=PASSWORD, password_again=PASSWORD)
    token = fields["csrf"]
    # A different first character, whatever the token happens to start with.
    fields["csrf"] = ("y" if token[0] == "x" else "x") + token[1:]
    r = visitor.post("/signup", data=fields)
    assert r.status_code == 403, r.text
    fields.pop("csrf")
    r = visitor.post("/signup", data=fields)
    assert r.status_code == 403, r.text
    with TestClient(app) as other:
        assert log_in(other, "new@example.org", PASSWORD).status_code == 401


def test_sign_up_with_a_short_password_keeps_the_email_and_says_why(visitor: TestClient) -> None:
    fields = dict(_signup_form(visitor))
    fields.update(email="new@example.org", password="short", password_again="short")
    r = visitor.post("/signup", data=fields)
    assert r.status_code == 422, r.text
    again = form(r.text, "/signup")
    assert again.value("email") == "new@example.org"
    assert again.value("password") == ""
    assert "short" not in r.text.replace("shortest", "")
    assert 'id="password-error"' in r.text
    assert 'aria-describedby="password-hint password-error" aria-invalid="true"' in r.text
    assert "Password: String should have at least 12 characters." in r.text
    assert 'role="alert"' in r.text


def test_sign_up_with_two_different_passwords_is_refused(visitor: TestClient) -> None:
    fields = dict(_signup_form(visitor))
    fields.update(email="new@example.org", password=PASSWORD, password_again=NEW_PASSWORD)
    r = visitor.post("/signup", data=fields)
    assert r.status_code == 422, r.text
    assert "Password again: the two passwords differ." in r.text
    assert visitor.get("/api/v1/me").status_code == 401


def test_sign_up_with_a_taken_email_says_so(visitor: TestClient, ana: Customer) -> None:
    fields = dict(_signup_form(visitor))
    fields.update(email=ana.email, password=NEW_PASSWORD, password_again=NEW_PASSWORD)
    r = visitor.post("/signup", data=fields)
    assert r.status_code == 409, r.text
    assert "An account with this email already exists." in r.text
    assert form(r.text, "/signup").value("email") == ana.email


def test_log_out_ends_the_session(ana: Customer) -> None:
    token = forms(ana.http.get("/").text)["/logout"].value("csrf")
    r = ana.http.post("/logout", data={"csrf": token})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"
    assert ana.http.get("/api/v1/me").status_code == 401


def test_log_out_without_its_token_or_with_another_sessions_is_refused(
    ana: Customer, bob: Customer
) -> None:
    bobs = forms(bob.http.get("/").text)["/logout"].value("csrf")
    assert ana.http.post("/logout", data={}).status_code == 403
    assert ana.http.post("/logout", data={"csrf": bobs}).status_code == 403
    assert ana.http.get("/api/v1/me").status_code == 200


def test_password_change_keeps_this_session_and_ends_the_others(
    ana: Customer, app: FastAPI
) -> None:
    with TestClient(app) as other:
        assert log_in(other, ana.email, PASSWORD).status_code == 200
        fields = ana.get_form("/account/password").data(
            current_password=PASSWORD,
            new_password=NEW_PASSWORD,
            new_password_again=NEW_PASSWORD,
        )
        r = ana.http.post("/account/password", data=fields)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/account/password?changed=true"
        assert other.get("/api/v1/me").status_code == 401
    page = ana.http.get(r.headers["location"])
    assert "Your password was changed." in page.text
    assert log_in(ana.http, ana.email, NEW_PASSWORD).status_code == 200


def test_password_change_with_the_wrong_current_password_changes_nothing(
    ana: Customer, app: FastAPI
) -> None:
    fields = ana.get_form("/account/password").data(
        current_password="not the password",
        new_password=NEW_PASSWORD,
        new_password_again=NEW_PASSWORD,
    )
    r = ana.http.post("/account/password", data=fields)
    assert r.status_code == 403, r.text
    assert "Current password: The password is wrong." in r.text
    assert NEW_PASSWORD not in r.text
    assert "not the password" not in r.text
    with TestClient(app) as other:
        assert log_in(other, ana.email, PASSWORD).status_code == 200


def test_password_change_without_its_token_or_with_another_sessions_is_refused(
    ana: Customer, bob: Customer, app: FastAPI
) -> None:
    change = {
        "current_password": PASSWORD,
        "new_password": NEW_PASSWORD,
        "new_password_again": NEW_PASSWORD,
    }
    bobs = bob.get_form("/account/password").value("csrf")
    assert ana.http.post("/account/password", data=change).status_code == 403
    r = ana.http.post("/account/password", data={**change, "csrf": str(bobs)})
    assert r.status_code == 403
    assert "This form expired or did not come from this site" in r.text
    with TestClient(app) as other:
        assert log_in(other, ana.email, PASSWORD).status_code == 200


def test_pages_need_a_session(visitor: TestClient) -> None:
    r = visitor.get("/account/password")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account/password"
    r = visitor.post("/account/password", data={})
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/account/password"


def test_log_in_lands_home_or_back_on_the_page_that_asked(
    visitor: TestClient, ana: Customer
) -> None:
    r = visitor.get("/data/history?cursor=abc")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/data/history%3Fcursor%3Dabc"
    login = visitor.get(r.headers["location"])
    fields = form(login.text, "/login").data(email=ana.email, password=PASSWORD)
    assert fields["next"] == "/data/history?cursor=abc"
    r = visitor.post("/login", data=fields)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/data/history?cursor=abc"
    # Without a page that asked, home.
    r = visitor.post(
        "/logout", data={"csrf": forms(visitor.get("/").text)["/logout"].value("csrf")}
    )
    assert r.status_code == 303
    login = visitor.get("/login")
    r = visitor.post(
        "/login", data=form(login.text, "/login").data(email=ana.email, password=PASSWORD)
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/"


def test_password_guesses_through_the_page_are_throttled_as_through_the_api(
    ana: Customer, app: FastAPI
) -> None:
    """A stolen session is no password oracle on the page either: the
    service's throttle answers, and the page says so with Retry-After."""
    guess = {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
    statuses = []
    for n in range(6):
        fields = ana.get_form("/account/password").data(current_password=f"guess {n}", **guess)
        r = ana.http.post("/account/password", data=fields)
        statuses.append(r.status_code)
    assert statuses == [403, 403, 403, 403, 403, 429]
    assert int(r.headers["retry-after"]) > 0
    assert "<p>Too many failed attempts; try again later.</p>" in r.text
    fields = ana.get_form("/account/password").data(current_password=PASSWORD, **guess)
    assert ana.http.post("/account/password", data=fields).status_code == 429
    with TestClient(app) as other:
        assert log_in(other, ana.email, PASSWORD).status_code == 200
