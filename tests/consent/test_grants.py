"""The customer's side of consent: what a grant holds, and that narrowing,
revoking or expiry takes effect on the vendor's very next request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from sqlmodel import Session, update

from consent.grants.models import Grant
from tests.conftest import Person
from tests.consent.conftest import Vendor, authorize, decide, start, tokens_for
from tests.kit import assert_problem
from vrm.dbtypes import utcnow

GRANTS = "/api/v1/me/grants"


def _only_grant(person: Person) -> dict:  # type: ignore[type-arg]
    r = person.client.get(GRANTS)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 1
    return items[0]  # type: ignore[no-any-return]


def test_the_grant_records_what_was_allowed_not_what_was_asked(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, "profile.email:read profile.phone:read history:read")
    decide(ana, auth, allow=["profile.email:read"], duration_days="30")
    grant = _only_grant(ana)
    assert grant["scopes"] == ["profile.email:read"]
    assert grant["described"] == ["read your contact email address"]
    assert grant["status"] == "active"
    assert grant["vendor"]["id"] == vendor.client_id
    assert grant["vendor"]["name"] == "Bertrand Books"
    assert grant["purpose"] == "dpv:ServiceProvision"
    assert grant["legal_basis"] == "dpv:Consent"
    expires = datetime.fromisoformat(grant["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    [change] = grant["changes"]
    assert change["kind"] == "granted"
    assert change["detail"]["requested"] == [
        "history:read",
        "profile.email:read",
        "profile.phone:read",
    ]
    token = vendor.exchange(auth.code, auth.verifier).json()
    assert token["scope"] == "profile.email:read"


def test_a_customer_cannot_smuggle_in_a_scope_the_vendor_did_not_ask_for(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "profile.email:read")
    decide(ana, auth, allow=["profile.email:read", "history:read", "profile:read"])
    token = vendor.exchange(auth.code, auth.verifier).json()
    assert token["scope"] == "profile.email:read"


def test_denying_sends_access_denied_and_creates_no_grant(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor)
    decide(ana, auth, decision="deny")
    assert auth.query["error"] == ["access_denied"]
    assert auth.query["state"] == [auth.params["state"]]
    assert ana.client.get(GRANTS).json()["items"] == []


def test_unticking_everything_is_a_denial(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor)
    decide(ana, auth, allow=[])
    assert auth.query["error"] == ["access_denied"]
    assert ana.client.get(GRANTS).json()["items"] == []


def test_the_consent_form_needs_its_csrf_token(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor)
    assert auth.form is not None
    auth.form.hidden["csrf"] = "forged"
    decide(ana, auth)
    assert auth.page.status_code == 403
    assert "location" not in auth.page.headers
    assert ana.client.get(GRANTS).json()["items"] == []


def test_another_customers_csrf_token_does_not_work(
    ana: Person, bob: Person, vendor: Vendor
) -> None:
    bobs = start(bob, vendor)
    anas = start(ana, vendor)
    assert bobs.form is not None
    assert anas.form is not None
    anas.form.hidden["csrf"] = bobs.form.hidden["csrf"]
    decide(ana, anas)
    assert anas.page.status_code == 403


def test_a_request_without_purpose_is_refused(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, purpose="")
    assert auth.query["error"] == ["invalid_scope"]
    assert "purpose" in auth.query["error_description"][0]
    unknown = start(ana, vendor, purpose="dpv:Anything")
    assert unknown.query["error"] == ["invalid_scope"]


def test_revoking_a_grant_kills_its_access_and_refresh_tokens_at_once(
    ana: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor)
    grant_id = token["grant_id"]
    assert vendor.introspect(token["access_token"])["active"] is True
    r = ana.client.delete(f"{GRANTS}/{grant_id}")
    assert r.status_code == 204
    assert vendor.introspect(token["access_token"]) == {"active": False}
    r = vendor.refresh(token["refresh_token"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    grant = _only_grant(ana)
    assert grant["status"] == "revoked"
    assert grant["revoked_by"] == "customer"
    assert [c["kind"] for c in grant["changes"]] == ["granted", "revoked"]
    # Revoking twice is harmless.
    assert ana.client.delete(f"{GRANTS}/{grant_id}").status_code == 204


def test_after_revocation_the_vendor_must_ask_again(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    again = start(ana, vendor, "profile.email:read")
    assert again.page.status_code == 200  # the consent page, not a silent code


def test_narrowing_a_grant_narrows_live_tokens_at_once(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "profile.email:read preferences:read")
    r = ana.client.patch(f"{GRANTS}/{token['grant_id']}", json={"scopes": ["profile.email:read"]})
    assert r.status_code == 200, r.text
    assert r.json()["scopes"] == ["profile.email:read"]
    assert vendor.introspect(token["access_token"])["scope"] == "profile.email:read"
    refreshed = vendor.refresh(token["refresh_token"]).json()
    assert refreshed["scope"] == "profile.email:read"
    kinds = [c["kind"] for c in r.json()["changes"]]
    assert kinds == ["granted", "narrowed"]


def test_a_grant_cannot_be_widened(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")
    url = f"{GRANTS}/{token['grant_id']}"
    for scopes in (["profile:read"], ["profile.email:read", "history:read"]):
        r = ana.client.patch(url, json={"scopes": scopes})
        assert_problem(r, 422, "validation")
    later = (utcnow() + timedelta(days=800)).isoformat()
    assert ana.client.patch(url, json={"expires_at": later}).status_code == 422
    assert ana.client.patch(url, json={"scopes": ["nonsense"]}).status_code == 422
    assert ana.client.patch(url, json={"scope": ["x"]}).status_code == 422
    assert _only_grant(ana)["scopes"] == ["profile.email:read"]


def test_shortening_a_grant_caps_its_tokens(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor)
    soon = utcnow() + timedelta(hours=1)
    r = ana.client.patch(f"{GRANTS}/{token['grant_id']}", json={"expires_at": soon.isoformat()})
    assert r.status_code == 200, r.text
    info = vendor.introspect(token["refresh_token"])
    assert info["active"] is True
    refreshed = vendor.refresh(token["refresh_token"]).json()
    new_info = vendor.introspect(refreshed["refresh_token"])
    assert new_info["exp"] <= int(soon.timestamp()) + 1


def test_an_expired_grant_s_tokens_stop_working(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor)
    with Session(app.state.engine) as session:
        session.exec(update(Grant).values(expires_at=utcnow() - timedelta(seconds=1)))  # type: ignore[call-overload]
        session.commit()
    assert vendor.introspect(token["access_token"]) == {"active": False}
    assert vendor.refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
    assert _only_grant(ana)["status"] == "expired"


def test_one_customer_cannot_see_or_change_another_s_grant(
    ana: Person, bob: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor)
    url = f"{GRANTS}/{token['grant_id']}"
    assert bob.client.get(url).status_code == 404
    assert bob.client.patch(url, json={"scopes": ["preferences:read"]}).status_code == 404
    assert bob.client.delete(url).status_code == 404
    assert bob.client.get(GRANTS).json()["items"] == []
    assert vendor.introspect(token["access_token"])["active"] is True
    assert _only_grant(ana)["scopes"] == ["preferences:read", "profile.email:read"]


def test_a_vendor_cannot_introspect_another_vendor_s_token(
    ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor)
    assert other_vendor.introspect(token["access_token"]) == {"active": False}
    assert vendor.introspect(token["access_token"])["active"] is True


def test_vendors_see_different_subjects_for_the_same_customer(
    ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    a = vendor.introspect(tokens_for(ana, vendor)["access_token"])["sub"]
    b = other_vendor.introspect(tokens_for(ana, other_vendor)["access_token"])["sub"]
    assert a != b
    assert ana.id not in (a, b)
    # Stable for one vendor.
    again = vendor.introspect(tokens_for(ana, vendor, prompt="consent")["access_token"])["sub"]
    assert again == a


def test_revoking_a_token_at_the_revocation_endpoint(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor)
    r = vendor.client.post(
        "/oauth/revoke",
        data={"token": token["refresh_token"], "token_type_hint": "refresh_token"},
        auth=vendor.auth,
    )
    assert r.status_code == 200
    assert vendor.introspect(token["access_token"]) == {"active": False}
    assert vendor.refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
    # Unknown tokens get 200 too (RFC 7009 2.2).
    r = vendor.client.post("/oauth/revoke", data={"token": "vat_nothing"}, auth=vendor.auth)
    assert r.status_code == 200
    # The grant itself stands: the vendor may ask again without a new consent.
    assert _only_grant(ana)["status"] == "active"


def test_deleting_the_account_ends_every_grant_and_token(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor)
    r = ana.client.request("DELETE", "/api/v1/me", json={"password": ana.password})
    assert r.status_code == 204, r.text
    assert vendor.introspect(token["access_token"]) == {"active": False}
    assert vendor.refresh(token["refresh_token"]).json()["error"] == "invalid_grant"


def test_disabling_a_vendor_stops_its_tokens(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    from consent.vendors import service as vendors

    token = tokens_for(ana, vendor)
    with Session(app.state.engine) as session:
        vendors.disable(session, app.state.vault, vendor.client_id)
    r = vendor.refresh(token["refresh_token"])
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic "), r.headers
    grant = _only_grant(ana)
    assert grant["status"] == "revoked"
    assert grant["revoked_by"] == "operator"


# RFC 9396 authorization_details ------------------------------------------------


def _details(**overrides: object) -> str:
    detail = {
        "type": "urn:vrm:consent:data-access",
        "datatypes": ["profile"],
        "actions": ["read"],
        "fields": ["email", "given_name"],
        "purpose": "dpv:Marketing",
        "retention": "P6M",
    }
    detail.update(overrides)
    return json.dumps([detail])


def test_authorization_details_are_granted_and_returned_as_granted(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "", authorization_details=_details(), purpose="")
    assert auth.form is not None, auth.page.text
    assert sorted(auth.form.checkboxes) == ["profile.email:read", "profile.given_name:read"]
    decide(ana, auth, allow=["profile.email:read"])
    token = vendor.exchange(auth.code, auth.verifier).json()
    [detail] = token["authorization_details"]
    assert detail["type"] == "urn:vrm:consent:data-access"
    assert detail["datatypes"] == ["profile"]
    assert detail["fields"] == ["email"]
    assert detail["purpose"] == "dpv:Marketing"
    assert detail["retention"] == "P6M"
    assert vendor.introspect(token["access_token"])["authorization_details"] == [detail]
    assert _only_grant(ana)["retention"] == "P6M"


def test_unknown_members_of_authorization_details_are_refused(ana: Person, vendor: Vendor) -> None:
    for bad in (
        _details(locations=["https://elsewhere.example"]),
        _details(type="https://other.example/type"),
        _details(datatypes=["medical"]),
        _details(fields=["shoe_size"]),
        _details(actions=["delete"]),
        _details(purpose="dpv:Whatever"),
        _details(retention="forever"),
        "not json",
        "{}",
    ):
        auth = start(ana, vendor, "", authorization_details=bad, purpose="")
        assert auth.query.get("error") == ["invalid_authorization_details"], (bad, auth.location)
    assert ana.client.get(GRANTS).json()["items"] == []


def test_a_customer_who_is_not_logged_in_logs_in_first_then_consents(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    from fastapi.testclient import TestClient

    browser = Person(ana.email, ana.password, TestClient(app), ana.id)
    auth = start(browser, vendor)
    assert auth.page.status_code == 303
    login_url = auth.page.headers["location"]
    page = browser.client.get(login_url)
    assert page.status_code == 200
    from tests.consent.conftest import read_form

    form = read_form(page.text)
    r = browser.client.post(
        "/login",
        data={**form.hidden, "email": ana.email, "password": ana.password},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/oauth/authorize?")
    # The login page's session is the API's session.
    assert browser.client.get("/api/v1/me").json()["id"] == ana.id
    after = browser.client.get(r.headers["location"], follow_redirects=False)
    assert after.status_code == 200
    assert "Bertrand Books" in after.text


def test_the_login_page_refuses_a_form_without_its_csrf_cookie(app: FastAPI, ana: Person) -> None:
    from fastapi.testclient import TestClient

    browser = TestClient(app)
    r = browser.post(
        "/login",
        data={"email": ana.email, "password": ana.password, "csrf": "x", "next": "/"},
        follow_redirects=False,
    )
    assert r.status_code == 400
    assert "vrm_session" not in r.cookies


def test_the_login_page_never_redirects_off_site(app: FastAPI, ana: Person) -> None:
    from fastapi.testclient import TestClient

    from tests.consent.conftest import read_form

    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        browser = TestClient(app)
        page = browser.get("/login", params={"next": target})
        form = read_form(page.text)
        r = browser.post(
            "/login",
            data={**form.hidden, "email": ana.email, "password": ana.password},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/"


def test_a_wrong_password_on_the_login_page_says_so_without_a_session(
    app: FastAPI, ana: Person
) -> None:
    from fastapi.testclient import TestClient

    from tests.consent.conftest import read_form

    browser = TestClient(app)
    form = read_form(browser.get("/login").text)
    r = browser.post(
        "/login",
        data={**form.hidden, "email": ana.email, "password": "wrong password here"},
        follow_redirects=False,
    )
    assert r.status_code == 401
    assert "vrm_session" not in r.cookies
    assert "wrong password here" not in r.text


def test_authorize_keeps_working_for_a_covered_request_after_a_narrowing(
    ana: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor, "profile.email:read preferences:read")
    ana.client.patch(f"{GRANTS}/{token['grant_id']}", json={"scopes": ["profile.email:read"]})
    # No longer covered: preferences were taken away, so the page comes back.
    assert start(ana, vendor, "profile.email:read preferences:read").page.status_code == 200
    # Still covered.
    auth = authorize(ana, vendor, "profile.email:read")
    assert auth.page.status_code == 303


def test_grants_are_in_the_customer_s_export(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    export = ana.client.get("/api/v1/me/export").json()
    [grant] = export["grants"]
    assert grant["id"] == token["grant_id"]
    assert grant["vendor"]["name"] == "Bertrand Books"
    assert grant["scopes"] == ["profile.email:read"]
    assert grant["status"] == "revoked"
    assert [c["kind"] for c in grant["changes"]] == ["granted", "revoked"]


def test_a_code_exchanged_after_a_narrowing_gets_the_narrowed_scope(
    ana: Person, vendor: Vendor
) -> None:
    auth = authorize(ana, vendor, "profile.email:read preferences:read")
    grant_id = _only_grant(ana)["id"]
    ana.client.patch(f"{GRANTS}/{grant_id}", json={"scopes": ["preferences:read"]})
    token = vendor.exchange(auth.code, auth.verifier).json()
    assert token["scope"] == "preferences:read"
    assert vendor.introspect(token["access_token"])["scope"] == "preferences:read"


def test_a_code_for_a_revoked_grant_gets_no_token(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor, "profile.email:read")
    ana.client.delete(f"{GRANTS}/{_only_grant(ana)['id']}")
    r = vendor.exchange(auth.code, auth.verifier)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
