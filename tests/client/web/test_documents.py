"""The profile and preferences pages: saved through the records service,
refused as it refuses, never changed by a form from elsewhere."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.client.web.conftest import Customer, form


def _profile(who: Customer) -> dict[str, Any]:
    r = who.http.get("/api/v1/me/profile")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _preferences(who: Customer) -> dict[str, Any]:
    r = who.http.get("/api/v1/me/preferences")
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_profile_saved_from_the_page_is_what_the_api_reads(ana: Customer) -> None:
    fields = ana.get_form("/data/profile").data(
        given_name="Ana",
        family_name="Lima",
        phone="+351 21 000 0000",
        postal_address__locality="Porto",
        postal_address__country="PT",
        birth_date="1990-04-01",
    )
    r = ana.http.post("/data/profile", data=fields)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/data/profile?saved=true"
    assert _profile(ana) == {
        "given_name": "Ana",
        "family_name": "Lima",
        "email": None,
        "phone": "+351 21 000 0000",
        "postal_address": {
            "street_address": None,
            "locality": "Porto",
            "region": None,
            "postal_code": None,
            "country": "PT",
        },
        "birth_date": "1990-04-01",
        "language": None,
    }
    page = ana.http.get(r.headers["location"])
    assert "Saved." in page.text
    shown = form(page.text, "/data/profile")
    assert shown.value("given_name") == "Ana"
    assert shown.value("postal_address.country") == "PT"


def test_emptying_a_field_removes_it_and_an_empty_address_goes(ana: Customer) -> None:
    fields = ana.get_form("/data/profile").data(given_name="Ana", postal_address__locality="Porto")
    assert ana.http.post("/data/profile", data=fields).status_code == 303
    fields = ana.get_form("/data/profile").data(given_name="", postal_address__locality="")
    assert ana.http.post("/data/profile", data=fields).status_code == 303
    profile = _profile(ana)
    assert profile["given_name"] is None
    assert profile["postal_address"] is None


def test_invalid_profile_keeps_the_form_and_says_which_field(ana: Customer) -> None:
    fields = ana.get_form("/data/profile").data(
        given_name="Ana", phone="call me maybe", postal_address__country="Portugal"
    )
    r = ana.http.post("/data/profile", data=fields)
    assert r.status_code == 422, r.text
    assert "Nothing was saved." in r.text
    assert "Phone: is not in the expected format." in r.text
    assert "Country: is not in the expected format." in r.text
    assert '<a href="#phone">Phone: is not in the expected format.</a>' in r.text
    assert 'id="phone-error"' in r.text
    assert 'aria-describedby="phone-hint phone-error" aria-invalid="true"' in r.text
    again = form(r.text, "/data/profile")
    assert again.value("given_name") == "Ana"
    assert again.value("phone") == "call me maybe"
    assert _profile(ana)["given_name"] is None


def test_profile_form_without_its_token_or_with_another_sessions_changes_nothing(
    ana: Customer, bob: Customer
) -> None:
    fields = ana.get_form("/data/profile").data(given_name="Mallory")
    bobs = bob.get_form("/data/profile").value("csrf")
    without = {k: v for k, v in fields.items() if k != "csrf"}
    assert ana.http.post("/data/profile", data=without).status_code == 403
    r = ana.http.post("/data/profile", data={**fields, "csrf": str(bobs)})
    assert r.status_code == 403
    assert "did not come from this site" in r.text
    # Another page's token of the same session does not do either.
    other = ana.get_form("/data/preferences").value("csrf")
    assert ana.http.post("/data/profile", data={**fields, "csrf": str(other)}).status_code == 403
    assert _profile(ana)["given_name"] is None


def test_a_stale_page_does_not_overwrite_a_newer_change(ana: Customer) -> None:
    stale = ana.get_form("/data/profile").data(given_name="From the page")
    r = ana.http.patch(
        "/api/v1/me/profile",
        json={"given_name": "From the API"},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    r = ana.http.post("/data/profile", data=stale)
    assert r.status_code == 409, r.text
    assert "changed elsewhere" in r.text
    assert _profile(ana)["given_name"] == "From the API"
    # Told, the customer may send it again and replace it.
    again = form(r.text, "/data/profile")
    assert again.value("given_name") == "From the page"
    assert ana.http.post("/data/profile", data=again.data()).status_code == 303
    assert _profile(ana)["given_name"] == "From the page"


def test_preferences_saved_from_the_page(ana: Customer) -> None:
    fields = ana.get_form("/data/preferences").data(
        communication__channels=["email", "sms"],
        communication__frequency="weekly",
        communication__quiet_hours__start="22:00",
        communication__quiet_hours__end="07:30",
        shopping__sizes="shoes: 38\nshirt: M",
        shopping__brands="Acme\n\n  Lello  ",
        shopping__budget__amount="150.50",
        shopping__budget__currency="EUR",
        dietary="vegetarian",
    )
    r = ana.http.post("/data/preferences", data=fields)
    assert r.status_code == 303, r.text
    prefs = _preferences(ana)
    assert prefs["communication"] == {
        "channels": ["email", "sms"],
        "frequency": "weekly",
        "quiet_hours": {"start": "22:00:00", "end": "07:30:00"},
        "language": None,
    }
    assert prefs["shopping"] == {
        "sizes": {"shoes": "38", "shirt": "M"},
        "brands": ["Acme", "Lello"],
        "interests": [],
        "budget": {"amount": "150.50", "currency": "EUR"},
    }
    assert prefs["dietary"] == ["vegetarian"]
    # A size taken off the form is gone, and so is the budget when emptied.
    fields = ana.get_form("/data/preferences").data(
        shopping__sizes="shoes: 39", shopping__budget__amount="", shopping__budget__currency=""
    )
    assert ana.http.post("/data/preferences", data=fields).status_code == 303
    prefs = _preferences(ana)
    assert prefs["shopping"]["sizes"] == {"shoes": "39"}
    assert prefs["shopping"]["budget"] is None
    assert prefs["communication"]["channels"] == ["email", "sms"]


def test_preferences_keep_free_entries_the_page_does_not_show(ana: Customer) -> None:
    r = ana.http.patch(
        "/api/v1/me/preferences",
        json={"free": {"newsletter.topic": "poetry"}},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    page = ana.http.get("/data/preferences")
    assert "1 free-form entry" in page.text
    fields = form(page.text, "/data/preferences").data(dietary="vegan")
    assert ana.http.post("/data/preferences", data=fields).status_code == 303
    assert _preferences(ana)["free"] == {"newsletter.topic": "poetry"}


def test_half_a_quiet_hours_pair_is_refused_by_the_schema(ana: Customer) -> None:
    fields = ana.get_form("/data/preferences").data(
        communication__quiet_hours__start="22:00", communication__channels=["post"]
    )
    r = ana.http.post("/data/preferences", data=fields)
    assert r.status_code == 422, r.text
    assert "Until: is needed." in r.text
    again = form(r.text, "/data/preferences")
    assert again.value("communication.quiet_hours.start") == "22:00"
    assert again.values("communication.channels") == ["post"]
    assert _preferences(ana)["communication"] is None


def test_a_channel_not_in_the_catalogue_is_refused(ana: Customer) -> None:
    fields = ana.get_form("/data/preferences").data(communication__channels=["carrier pigeon"])
    r = ana.http.post("/data/preferences", data=fields)
    assert r.status_code == 422, r.text
    assert _preferences(ana)["communication"] is None


def test_preferences_form_without_its_token_changes_nothing(ana: Customer, bob: Customer) -> None:
    fields = ana.get_form("/data/preferences").data(dietary="vegan")
    bobs = bob.get_form("/data/preferences").value("csrf")
    assert ana.http.post("/data/preferences", data={**fields, "csrf": ""}).status_code == 403
    assert ana.http.post("/data/preferences", data={**fields, "csrf": str(bobs)}).status_code == 403
    assert _preferences(ana)["dietary"] == []


def test_each_customer_sees_and_saves_only_their_own_document(ana: Customer, bob: Customer) -> None:
    fields = ana.get_form("/data/profile").data(given_name="Ana")
    assert ana.http.post("/data/profile", data=fields).status_code == 303
    assert form(bob.http.get("/data/profile").text, "/data/profile").value("given_name") == ""
    # Bob's session with Ana's form (and Ana's token) is refused, and
    # Bob's own form writes only Bob's profile.
    assert bob.http.post("/data/profile", data=fields).status_code == 403
    mine = bob.get_form("/data/profile").data(given_name="Bob")
    assert bob.http.post("/data/profile", data=mine).status_code == 303
    assert _profile(ana)["given_name"] == "Ana"
    assert _profile(bob)["given_name"] == "Bob"


def test_document_pages_need_a_session(visitor: TestClient) -> None:
    for path in ("/data/profile", "/data/preferences"):
        for method in ("GET", "POST"):
            r = visitor.request(method, path)
            assert r.status_code == 303, (method, path)
            assert r.headers["location"] == f"/login?next={path}"
