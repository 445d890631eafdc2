"""Export and account deletion from the pages: the API's own export and
erasure, behind a typed confirmation and the session's CSRF token."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.client.web.conftest import Customer, form
from tests.conftest import PASSWORD
from tests.kit import exported, log_in


def test_export_download_is_the_apis_export_as_an_attachment(ana: Customer) -> None:
    r = ana.http.post(
        "/api/v1/me/history",
        json={"vendor": "Lello", "type": "visit", "occurred_at": "2026-12-01T10:00:00Z"},
    )
    assert r.status_code == 201, r.text
    page = ana.http.get("/account/export")
    assert page.status_code == 200, page.text
    assert 'href="/account/export/download"' in page.text
    r = ana.http.get("/account/export/download")
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == 'attachment; filename="vrm-export.json"'
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    from_page = r.json()
    from_api = exported(ana.http).json()
    assert list(from_page) == list(from_api)
    # Every section alike but the audit log (the second export is recorded
    # in it, after the first) and the export's own time.
    for name in from_api:
        if name not in ("exported_at", "audit_log"):
            assert from_page[name] == from_api[name], name
    assert from_page["account"]["email"] == ana.email
    assert [e["vendor"] for e in from_page["history"]] == ["Lello"]


def test_export_needs_a_session(visitor: TestClient) -> None:
    for path in ("/account/export", "/account/export/download"):
        r = visitor.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"] == f"/login?next={path}"


def test_export_gives_each_customer_their_own_data(ana: Customer, bob: Customer) -> None:
    assert ana.http.get("/account/export/download").json()["account"]["email"] == ana.email
    assert bob.http.get("/account/export/download").json()["account"]["email"] == bob.email


def test_delete_page_says_what_crypto_shredding_means(ana: Customer) -> None:
    r = ana.http.get("/account/delete")
    assert r.status_code == 200, r.text
    assert "crypto-shredding" in r.text
    assert "those keys are destroyed first" in r.text
    assert "can then never be read again by anyone" in r.text


def test_deleting_the_account_erases_it_and_ends_the_session(ana: Customer, app: FastAPI) -> None:
    fields = ana.get_form("/account/delete").data(email="  ANA@example.org ", password=PASSWORD)
    r = ana.http.post("/account/delete", data=fields)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/goodbye"
    cleared = [c for c in r.headers.get_list("set-cookie") if c.startswith("vrm_session=")]
    assert len(cleared) == 1
    assert "Max-Age=0" in cleared[0]
    goodbye = ana.http.get("/goodbye")
    assert goodbye.status_code == 200
    assert "Your account and all its data were deleted" in goodbye.text
    assert ana.http.get("/api/v1/me").status_code == 401
    with TestClient(app) as other:
        assert log_in(other, ana.email, PASSWORD).status_code == 401


def test_a_mistyped_email_deletes_nothing_and_keeps_what_was_typed(
    ana: Customer, app: FastAPI
) -> None:
    fields = ana.get_form("/account/delete").data(email="ana@example.com", password=PASSWORD)
    r = ana.http.post("/account/delete", data=fields)
    assert r.status_code == 422, r.text
    assert "Your email: this is not the email you log in with." in r.text
    again = form(r.text, "/account/delete")
    assert again.value("email") == "ana@example.com"
    assert again.value("password") == ""
    assert PASSWORD not in r.text
    assert ana.http.get("/api/v1/me").status_code == 200


def test_a_wrong_password_deletes_nothing(ana: Customer) -> None:
    fields = ana.get_form("/account/delete").data(email=ana.email, password="not the password")
    r = ana.http.post("/account/delete", data=fields)
    assert r.status_code == 403, r.text
    assert "Your password: The password is wrong." in r.text
    assert "not the password" not in r.text
    assert ana.http.get("/api/v1/me").status_code == 200


def test_deletion_without_its_token_or_with_another_sessions_deletes_nothing(
    ana: Customer, bob: Customer
) -> None:
    fields = ana.get_form("/account/delete").data(email=ana.email, password=PASSWORD)
    bobs = bob.get_form("/account/delete").value("csrf")
    for token in ("", str(bobs)):
        r = ana.http.post("/account/delete", data={**fields, "csrf": token})
        assert r.status_code == 403, r.text
        assert "did not come from this site" in r.text
    assert ana.http.get("/api/v1/me").status_code == 200
    # Bob's session with Ana's whole form (her token) deletes nobody.
    r = bob.http.post("/account/delete", data=fields)
    assert r.status_code == 403, r.text
    assert bob.http.get("/api/v1/me").status_code == 200
    assert ana.http.get("/api/v1/me").status_code == 200


def test_delete_needs_a_session(visitor: TestClient) -> None:
    for method in ("GET", "POST"):
        r = visitor.request(method, "/account/delete")
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/account/delete"
