"""The vendor data API: exactly the granted data, and one access event per read."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, select

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from vrm.vendor_api.models import AccessEvent

ME = "/api/v1/me"
PROFILE = {
    "given_name": "Ana",
    "family_name": "Silva",
    "email": "ana.contact@example.net",
    "phone": "+351 912 345 678",
    "postal_address": {"street_address": "Rua Augusta 1", "country": "PT"},
    "language": "pt-PT",
}
PREFERENCES = {
    "communication": {"channels": ["email"]},
    "dietary": ["vegetarian"],
    "free": {"team": "green"},
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _events(app: FastAPI, customer_id: str) -> list[AccessEvent]:
    with Session(app.state.engine) as session:
        return list(
            session.exec(
                select(AccessEvent)
                .where(col(AccessEvent.customer_id) == customer_id)
                .order_by(col(AccessEvent.at))
            ).all()
        )


def _put(person: Person, category: str, body: dict[str, Any]) -> None:
    r = person.client.put(f"{ME}/{category}", json=body)
    assert r.status_code == 200, r.text


def _add_event(person: Person, **event: Any) -> str:
    body = {"vendor": "Bertrand Books", "type": "purchase", **event}
    r = person.client.post(f"{ME}/history", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def ana_profile(ana: Person) -> Person:
    _put(ana, "profile", PROFILE)
    _put(ana, "preferences", PREFERENCES)
    return ana


def _read(vendor: Vendor, token: str, path: str = "/v1/data", **headers: str) -> Any:
    return vendor.client.get(path, headers={**_bearer(token), **headers})


# -- projection ---------------------------------------------------------------


def test_email_grant_returns_the_email_and_no_other_field(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    r = _read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {
        "subject": body["subject"],
        "grant_id": t["grant_id"],
        "purpose": "dpv:ServiceProvision",
        "profile": {"email": "ana.contact@example.net"},
    }
    # Never the login email nor the internal id.
    assert ana_profile.email not in r.text
    assert ana_profile.id not in r.text
    assert body["subject"] != ana_profile.id


def test_whole_profile_grant_returns_every_profile_field(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")
    r = _read(vendor, t["access_token"], "/v1/data/profile")
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {**PROFILE, "birth_date": None}
    assert "preferences" not in r.json()
    assert "history" not in r.json()


def test_preferences_field_grant_returns_that_field_only(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "preferences.dietary:read")
    r = _read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["preferences"] == {"dietary": ["vegetarian"]}
    assert set(body) == {"subject", "grant_id", "purpose", "preferences"}


def test_history_never_shares_private_events_or_items_and_keeps_labels(
    ana: Person, vendor: Vendor
) -> None:
    _add_event(ana, occurred_at="2024-05-01T10:00:00Z", notes="secret", labels=["private"])
    _add_event(
        ana,
        occurred_at="2024-06-01T10:00:00Z",
        labels=["gift"],
        items=[
            {"name": "Atlas", "labels": ["not_for_me"]},
            {"name": "Diary", "labels": ["private"]},
            {"name": "Novel"},
        ],
    )
    event_id = _add_event(ana, occurred_at="2024-07-01T10:00:00Z", type="visit")
    t = tokens_for(ana, vendor, "history:read")
    r = _read(vendor, t["access_token"], "/v1/data/history")
    assert r.status_code == 200, r.text
    shared = r.json()["history"]
    ids = [e.pop("id") for e in shared]
    assert shared == [
        {
            "vendor": "Bertrand Books",
            "type": "visit",
            "occurred_at": "2024-07-01T10:00:00Z",
            "items": [],
            "labels": [],
        },
        {
            "vendor": "Bertrand Books",
            "type": "purchase",
            "occurred_at": "2024-06-01T10:00:00Z",
            "items": [
                {"name": "Atlas", "quantity": 1, "labels": ["not_for_me"]},
                {"name": "Novel", "quantity": 1, "labels": []},
            ],
            "labels": ["gift"],
        },
    ]
    assert "secret" not in r.text
    assert "Diary" not in r.text
    # Pairwise event ids: ours are not handed out.
    assert event_id not in ids
    assert len(set(ids)) == 2


def test_category_absent_from_the_grant_is_absent_from_the_document(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.given_name:read history:read")
    body = _read(vendor, t["access_token"]).json()
    assert body["profile"] == {"given_name": "Ana"}
    assert body["history"] == []
    assert "preferences" not in body


# -- consent changes take effect at once ----------------------------------------


def test_narrowing_the_grant_narrows_the_very_next_read(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read preferences:read")
    assert set(_read(vendor, t["access_token"]).json()) >= {"profile", "preferences"}
    r = ana_profile.client.patch(
        f"{ME}/grants/{t['grant_id']}", json={"scopes": ["profile.email:read"]}
    )
    assert r.status_code == 200, r.text
    body = _read(vendor, t["access_token"]).json()
    assert body["profile"] == {"email": "ana.contact@example.net"}
    assert "preferences" not in body
    r = _read(vendor, t["access_token"], "/v1/data/preferences")
    assert r.status_code == 403, r.text


def test_revoking_the_grant_makes_the_next_read_401(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")
    assert _read(vendor, t["access_token"]).status_code == 200
    r = ana_profile.client.delete(f"{ME}/grants/{t['grant_id']}")
    assert r.status_code == 204, r.text
    r = _read(vendor, t["access_token"])
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm", error="invalid_token"'
    assert "Ana" not in r.text
    assert len(_events(app, ana_profile.id)) == 1


# -- refusals -------------------------------------------------------------------


def test_category_not_granted_is_403_insufficient_scope(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    r = _read(vendor, t["access_token"], "/v1/data/history")
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == (
        'Bearer realm="vrm", error="insufficient_scope", scope="history:read"'
    )
    assert r.json() == {
        "type": "urn:vrm:problem:insufficient-scope",
        "title": "Forbidden",
        "status": 403,
        "detail": "The grant does not include history.",
        "instance": "/v1/data/history",
        "scope": "history:read",
    }
    assert _events(app, ana_profile.id) == []


def test_unknown_category_is_404(ana: Person, vendor: Vendor) -> None:
    t = tokens_for(ana, vendor, "profile.email:read")
    r = _read(vendor, t["access_token"], "/v1/data/terms")
    assert r.status_code == 404, r.text
    assert r.headers["content-type"] == "application/problem+json"


def test_missing_token_is_401_with_a_bare_challenge(vendor: Vendor) -> None:
    r = vendor.client.get("/v1/data")
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm"'


@pytest.mark.parametrize("token", ["vat_forged", "not-a-token", "vrt_refresh-shaped"])
def test_unknown_token_is_401_invalid_token(vendor: Vendor, token: str) -> None:
    r = _read(vendor, token)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm", error="invalid_token"'


def test_refresh_token_is_not_an_access_token(ana: Person, vendor: Vendor) -> None:
    t = tokens_for(ana, vendor, "profile.email:read")
    assert _read(vendor, t["refresh_token"]).status_code == 401


def test_token_in_the_query_string_is_refused(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    r = vendor.client.get("/v1/data", params={"access_token": t["access_token"]})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm"'
    assert _events(app, ana_profile.id) == []


def test_client_credentials_token_is_refused_with_403(vendor: Vendor) -> None:
    # Client credentials carry only feed:read, a scope no data read accepts.
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    r = _read(vendor, r.json()["access_token"])
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm", error="insufficient_scope"'


def test_each_customers_token_returns_only_that_customers_data(
    app: FastAPI, ana_profile: Person, bob: Person, vendor: Vendor
) -> None:
    _put(bob, "profile", {"given_name": "Bob", "email": "bob.contact@example.net"})
    ana_t = tokens_for(ana_profile, vendor, "profile:read")
    bob_t = tokens_for(bob, vendor, "profile:read")
    ana_r = _read(vendor, ana_t["access_token"])
    bob_r = _read(vendor, bob_t["access_token"])
    assert ana_r.json()["profile"]["given_name"] == "Ana"
    assert bob_r.json()["profile"] == {
        "given_name": "Bob",
        "family_name": None,
        "email": "bob.contact@example.net",
        "phone": None,
        "postal_address": None,
        "birth_date": None,
        "language": None,
    }
    assert "Ana" not in bob_r.text
    assert "Silva" not in bob_r.text
    assert ana_r.json()["subject"] != bob_r.json()["subject"]
    assert [e.subject for e in _events(app, bob.id)] == [bob_r.json()["subject"]]


# -- access events ----------------------------------------------------------------


def test_every_successful_read_records_one_event_naming_the_fields(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read preferences.dietary:read history:read")
    r = _read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    r = _read(vendor, t["access_token"], "/v1/data/preferences")
    assert r.status_code == 200, r.text
    events = _events(app, ana_profile.id)
    assert [
        (e.vendor_id, e.grant_id, e.subject, e.purpose, e.categories, e.fields, e.not_modified)
        for e in events
    ] == [
        (
            vendor.client_id,
            t["grant_id"],
            r.json()["subject"],
            "dpv:ServiceProvision",
            ["profile", "preferences", "history"],
            ["profile.email", "preferences.dietary", "history"],
            False,
        ),
        (
            vendor.client_id,
            t["grant_id"],
            r.json()["subject"],
            "dpv:ServiceProvision",
            ["preferences"],
            ["preferences.dietary"],
            False,
        ),
    ]


def test_access_events_hold_no_personal_values(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read preferences:read")
    assert _read(vendor, t["access_token"]).status_code == 200
    (event,) = _events(app, ana_profile.id)
    stored = repr(event.model_dump())
    for value in ("Ana", "Silva", "ana.contact", "Augusta", "vegetarian", ana_profile.email):
        assert value not in stored


# -- ETag and 304 -------------------------------------------------------------------


def test_if_none_match_with_the_current_etag_is_304_and_still_recorded(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    first = _read(vendor, t["access_token"], "/v1/data/profile")
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    again = _read(vendor, t["access_token"], "/v1/data/profile", **{"If-None-Match": etag})
    assert again.status_code == 304, again.text
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert [e.not_modified for e in _events(app, ana_profile.id)] == [False, True]
    assert _events(app, ana_profile.id)[1].fields == ["profile.email"]


def test_etag_ignores_changes_outside_the_grant_and_follows_changes_inside(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    etag = _read(vendor, t["access_token"], "/v1/data/profile").headers["etag"]
    _put(ana_profile, "profile", {**PROFILE, "given_name": "Ana Maria"})
    r = _read(vendor, t["access_token"], "/v1/data/profile", **{"If-None-Match": etag})
    assert r.status_code == 304, r.text
    _put(ana_profile, "profile", {**PROFILE, "email": "ana.new@example.net"})
    r = _read(vendor, t["access_token"], "/v1/data/profile", **{"If-None-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {"email": "ana.new@example.net"}
    assert r.headers["etag"] != etag
    assert r.headers["cache-control"] == "private, no-cache"
