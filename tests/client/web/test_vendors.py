"""The connected vendors pages: each grant in words, narrowed, shortened and
revoked through the grant services with effect on the vendor's very next
read, what the vendor sees shown without counting as a read, and nothing
of one customer's grants reachable by another."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from tests.client.web.conftest import Customer, form
from tests.client.web.grants import connect, grant_of, vendor_read
from tests.conftest import PASSWORD
from tests.consent.conftest import Vendor, register_vendor
from tests.kit import log_in
from vrm.vendor_api.models import AccessEvent


def _page(who: Customer, path: str) -> str:
    r = who.http.get(path)
    assert r.status_code == 200, r.text
    return r.text


def _text(page: str) -> str:
    """The page's words, tags dropped and spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _reads(app: FastAPI) -> int:
    with Session(app.state.engine) as session:
        return session.exec(select(func.count()).select_from(AccessEvent)).one()


def _log_size(who: Customer) -> int:
    r = who.http.get("/api/v1/me/access-log", params={"limit": 500})
    assert r.status_code == 200, r.text
    return len(r.json()["items"])


def test_the_list_says_each_grant_in_words(ana: Customer, vendor: Vendor) -> None:
    grant_id, token = connect(ana, vendor, "profile.email:read preferences:read")
    text = _text(_page(ana, "/vendors"))
    assert "Bertrand Books" in text
    assert "May Read all your preferences Read your contact email address" in text
    assert "Why To provide the service you asked for" in text
    assert "Last read Never" in text
    assert "Status Active" in text
    assert f'href="/vendors/{grant_id}"' in _page(ana, "/vendors")
    assert "registered itself" not in text
    detail = _page(ana, f"/vendors/{grant_id}")
    assert f'href="/access?vendor={vendor.client_id}">Every read by Bertrand Books</a>' in detail
    assert vendor_read(vendor, token).status_code == 200
    assert "Last read Never" not in _text(_page(ana, "/vendors"))
    assert f"Last read {datetime.now(UTC).day} " in _text(_page(ana, "/vendors"))


def test_no_grant_says_so(ana: Customer) -> None:
    assert "No vendor reads any of your data." in _text(_page(ana, "/vendors"))


def test_a_self_registered_vendor_is_flagged_and_its_name_escaped(
    app: FastAPI, ana: Customer
) -> None:
    vendor = register_vendor(app, '<img src=x onerror="alert(1)"> & Co', registered_by="dynamic")
    grant_id, _ = connect(ana, vendor, "profile.email:read")
    for path in ("/vendors", f"/vendors/{grant_id}", f"/vendors/{grant_id}/sees"):
        page = _page(ana, path)
        assert "<img src=x" not in page
        assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; Co" in page
    assert "This vendor registered itself: nobody at this store has reviewed it." in _text(
        _page(ana, f"/vendors/{grant_id}")
    )


def test_pages_need_a_session(visitor: TestClient) -> None:
    for path in ("/vendors", "/vendors/abc", "/vendors/abc/sees"):
        r = visitor.get(path)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/login?next={path}"


def test_narrowing_field_by_field_narrows_the_vendors_next_read(
    ana: Customer, vendor: Vendor
) -> None:
    grant_id, token = connect(ana, vendor, "profile:read")
    action = f"/vendors/{grant_id}/narrow"
    shown = ana.get_form(f"/vendors/{grant_id}", action)
    # The whole profile is offered field by field, all ticked.
    assert shown.values("keep") == [
        f"profile.{f}:read"
        for f in (
            "given_name",
            "family_name",
            "email",
            "phone",
            "postal_address",
            "birth_date",
            "language",
        )
    ]
    r = ana.http.post(action, data=shown.data(keep=["profile.email:read", "profile.phone:read"]))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/vendors/{grant_id}?done=narrowed"
    assert "the vendor can no longer read what you unticked" in _page(ana, r.headers["location"])
    assert grant_of(ana, grant_id)["scopes"] == ["profile.email:read", "profile.phone:read"]
    read = vendor_read(vendor, token)
    assert read.status_code == 200, read.text
    assert read.json()["profile"] == {"email": None, "phone": None}


def test_keeping_every_field_changes_nothing(ana: Customer, vendor: Vendor) -> None:
    grant_id, _ = connect(ana, vendor, "profile:read history:read")
    action = f"/vendors/{grant_id}/narrow"
    r = ana.http.post(action, data=ana.get_form(f"/vendors/{grant_id}", action).data())
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/vendors/{grant_id}?done=unchanged"
    grant = grant_of(ana, grant_id)
    assert grant["scopes"] == ["history:read", "profile:read"]
    assert [c["kind"] for c in grant["changes"]] == ["granted"]


def test_unticking_everything_is_refused_with_the_form_kept(ana: Customer, vendor: Vendor) -> None:
    grant_id, token = connect(ana, vendor, "profile.email:read")
    action = f"/vendors/{grant_id}/narrow"
    r = ana.http.post(action, data=ana.get_form(f"/vendors/{grant_id}", action).data(keep=[]))
    assert r.status_code == 422, r.text
    assert 'role="alert"' in r.text
    assert 'aria-describedby="keep-error"' in r.text
    assert "Nothing would be left; revoke the grant instead." in r.text
    assert form(r.text, action).values("keep") == []
    assert grant_of(ana, grant_id)["scopes"] == ["profile.email:read"]
    assert vendor_read(vendor, token).status_code == 200


def test_a_scope_never_granted_cannot_be_ticked_in(ana: Customer, vendor: Vendor) -> None:
    grant_id, _ = connect(ana, vendor, "profile.email:read")
    action = f"/vendors/{grant_id}/narrow"
    sent = ana.get_form(f"/vendors/{grant_id}", action).data(
        keep=["profile.email:read", "history:read"]
    )
    r = ana.http.post(action, data=sent)
    assert r.status_code == 422, r.text
    assert "A grant can only be narrowed" in r.text
    assert grant_of(ana, grant_id)["scopes"] == ["profile.email:read"]


def test_shortening_to_a_period_brings_the_end_closer(ana: Customer, vendor: Vendor) -> None:
    grant_id, _ = connect(ana, vendor, "profile.email:read")
    action = f"/vendors/{grant_id}/shorten"
    shown = ana.get_form(f"/vendors/{grant_id}", action)
    r = ana.http.post(action, data=shown.data(until="7"))
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/vendors/{grant_id}?done=shortened"
    ends = datetime.fromisoformat(grant_of(ana, grant_id)["expires_at"])
    assert timedelta(days=6, hours=23) < ends - datetime.now(UTC) <= timedelta(days=7)


def test_shortening_to_a_date_ends_after_that_day(ana: Customer, vendor: Vendor) -> None:
    grant_id, _ = connect(ana, vendor, "profile.email:read")
    action = f"/vendors/{grant_id}/shorten"
    day = (datetime.now(UTC) + timedelta(days=10)).date()
    r = ana.http.post(
        action, data=ana.get_form(f"/vendors/{grant_id}", action).data(on_date=day.isoformat())
    )
    assert r.status_code == 303, r.text
    ends = datetime.fromisoformat(grant_of(ana, grant_id)["expires_at"])
    assert ends == datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"on_date": "2999-01-01"}, "on_date", "A grant's expiry can only be brought closer."),
        ({"on_date": "2000-01-01"}, "on_date", "To end a grant now, revoke it."),
        ({"on_date": "soon"}, "on_date", "End date: is not a date (year-month-day)."),
        ({"until": "5000"}, "until", "New end: choose one of the periods offered."),
        ({}, "until", "New end: choose a period or a date."),
        ({"until": "7", "on_date": "2999-01-01"}, "until", "Choose a period or a date, not both."),
    ],
)
def test_a_shortening_that_is_not_one_is_refused_with_the_form_kept(
    ana: Customer, vendor: Vendor, change: dict[str, str], field: str, message: str
) -> None:
    grant_id, _ = connect(ana, vendor, "profile.email:read")
    before = grant_of(ana, grant_id)["expires_at"]
    action = f"/vendors/{grant_id}/shorten"
    r = ana.http.post(action, data=ana.get_form(f"/vendors/{grant_id}", action).data(**change))
    assert r.status_code == 422, r.text
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', r.text)
    assert error is not None, r.text
    assert html.unescape(error.group(1)) == message
    assert f'aria-describedby="{field}-error"' in r.text
    kept = form(r.text, action)
    assert kept.value("on_date") == change.get("on_date", "")
    assert grant_of(ana, grant_id)["expires_at"] == before


def test_revoking_takes_one_confirmation_and_the_vendors_next_read_fails(
    ana: Customer, vendor: Vendor
) -> None:
    grant_id, token = connect(ana, vendor, "profile.email:read")
    detail = _page(ana, f"/vendors/{grant_id}")
    assert f'href="/vendors/{grant_id}/revoke"' in detail
    action = f"/vendors/{grant_id}/revoke"
    confirm = ana.get_form(action)
    assert vendor_read(vendor, token).status_code == 200
    r = ana.http.post(action, data=confirm.data())
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"/vendors/{grant_id}?done=revoked"
    after = _text(_page(ana, r.headers["location"]))
    assert "Status Revoked by you: it can read nothing" in after
    assert grant_of(ana, grant_id)["status"] == "revoked"
    assert vendor_read(vendor, token).status_code == 401
    # No form to change a revoked grant is offered.
    assert f"/vendors/{grant_id}/narrow" not in _page(ana, f"/vendors/{grant_id}")


def test_what_the_vendor_sees_is_its_own_read_and_is_not_counted(
    app: FastAPI, ana: Customer, vendor: Vendor
) -> None:
    r = ana.http.put(
        "/api/v1/me/profile",
        json={"given_name": "Ana", "email": "ana@lima.example", "phone": "+351 21 000 0000"},
    )
    assert r.status_code == 200, r.text
    r = ana.http.post(
        "/api/v1/me/history",
        json={
            "vendor": "Bertrand",
            "type": "purchase",
            "occurred_at": "2026-11-01T10:00:00Z",
            "items": [{"name": "A novel"}],
        },
    )
    assert r.status_code == 201, r.text
    grant_id, token = connect(
        ana, vendor, "profile.email:read profile.given_name:read history:read"
    )
    reads, logged = _reads(app), _log_size(ana)

    page = _page(ana, f"/vendors/{grant_id}/sees")
    assert _reads(app) == reads
    assert _log_size(ana) == logged

    raw = re.search(r'<pre id="raw">(.*?)</pre>', page, re.S)
    assert raw is not None
    shown = json.loads(html.unescape(raw.group(1)))
    own = vendor_read(vendor, token)
    assert own.status_code == 200, own.text
    assert shown == own.json()
    assert set(shown["profile"]) == {"email", "given_name"}
    text = _text(page)
    assert "Your contact email address ana@lima.example" in text
    assert "Your given name Ana" in text
    assert "+351" not in text
    assert "A novel" in text
    assert _reads(app) == reads + 1


def test_a_revoked_grant_shows_that_the_vendor_sees_nothing(ana: Customer, vendor: Vendor) -> None:
    grant_id, _ = connect(ana, vendor, "profile.email:read")
    action = f"/vendors/{grant_id}/revoke"
    assert ana.http.post(action, data=ana.get_form(action).data()).status_code == 303
    page = _page(ana, f"/vendors/{grant_id}/sees")
    assert "Bertrand Books sees nothing of yours now: its access is revoked." in page
    assert 'id="raw"' not in page


def _second_session(app: FastAPI, who: Customer) -> Customer:
    http = TestClient(app, follow_redirects=False)
    assert log_in(http, who.email, PASSWORD).status_code == 200
    return Customer(who.email, http)


@pytest.mark.parametrize(
    ("action", "page", "change"),
    [
        ("narrow", "", {"keep": []}),
        ("shorten", "", {"until": "1"}),
        ("revoke", "/revoke", {}),
    ],
)
@pytest.mark.parametrize("token", ["none", "other session"])
def test_each_form_refuses_a_missing_or_foreign_csrf_token(
    app: FastAPI,
    ana: Customer,
    vendor: Vendor,
    action: str,
    page: str,
    change: dict[str, str | list[str]],
    token: str,
) -> None:
    grant_id, vendor_token = connect(ana, vendor, "profile.email:read profile.phone:read")
    before = grant_of(ana, grant_id)
    path = f"/vendors/{grant_id}/{action}"
    sent = ana.get_form(f"/vendors/{grant_id}{page}", path).data(**change)
    if token == "none":
        del sent["csrf"]
    else:
        other = _second_session(app, ana)
        sent["csrf"] = other.get_form(f"/vendors/{grant_id}{page}", path).value("csrf") or ""
        other.http.close()
        assert sent["csrf"]
    r = ana.http.post(path, data=sent)
    assert r.status_code == 403, r.text
    assert "This form expired or did not come from this site" in r.text
    assert grant_of(ana, grant_id) == before
    assert vendor_read(vendor, vendor_token).status_code == 200


def test_another_customers_grant_is_not_found_and_not_changed(
    ana: Customer, bob: Customer, vendor: Vendor
) -> None:
    bobs, token = connect(bob, vendor, "profile.email:read profile.phone:read")
    before = grant_of(bob, bobs)
    own, _ = connect(ana, vendor, "profile.email:read")
    for path in (f"/vendors/{bobs}", f"/vendors/{bobs}/sees", f"/vendors/{bobs}/revoke"):
        r = ana.http.get(path)
        assert r.status_code == 404, r.text
        assert "No such connection" in r.text
        assert "Bertrand Books" not in r.text
    # Her own valid token for each form, sent at his grant.
    for action, change in (
        ("narrow", {"keep": ["profile.email:read"]}),
        ("shorten", {"until": "1"}),
        ("revoke", {}),
    ):
        page = "/revoke" if action == "revoke" else ""
        sent = ana.get_form(f"/vendors/{own}{page}", f"/vendors/{own}/{action}").data(**change)
        r = ana.http.post(f"/vendors/{bobs}/{action}", data=sent)
        assert r.status_code == 404, r.text
    assert grant_of(bob, bobs) == before
    assert vendor_read(vendor, token).status_code == 200
    assert f"/vendors/{bobs}" not in _page(ana, "/vendors")
