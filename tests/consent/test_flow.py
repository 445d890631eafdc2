"""The authorization code flow end to end, as a vendor's client sees it."""

from __future__ import annotations

from tests.conftest import Person
from tests.consent.conftest import ISSUER, Vendor, authorize, decide, start


def test_customer_allows_and_the_vendor_gets_exactly_what_was_granted(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "profile.email:read profile.phone:read preferences:read")
    assert auth.page.status_code == 200, auth.page.text
    assert auth.form is not None
    assert sorted(auth.form.checkboxes) == [
        "preferences:read",
        "profile.email:read",
        "profile.phone:read",
    ]
    decide(ana, auth, allow=["profile.email:read", "preferences:read"])
    assert auth.page.status_code == 303
    assert auth.location is not None
    assert auth.location.startswith(vendor.redirect_uri + "?")
    assert auth.query["state"] == [auth.params["state"]]
    assert auth.query["iss"] == [ISSUER]
    r = vendor.exchange(auth.code, auth.verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "preferences:read profile.email:read"
    assert body["access_token"].startswith("vat_")
    assert body["refresh_token"].startswith("vrt_")
    assert r.headers["cache-control"] == "no-store"
    info = vendor.introspect(body["access_token"])
    assert info["active"] is True
    assert info["scope"] == "preferences:read profile.email:read"
    assert info["purpose"] == "dpv:ServiceProvision"
    assert info["client_id"] == vendor.client_id
    assert info["sub"] != ana.id


def test_a_request_covered_by_an_active_grant_skips_the_consent_page(
    ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "profile.email:read")
    again = start(ana, vendor, "profile.email:read")
    assert again.page.status_code == 303, again.page.text
    assert "code" in again.query
    forced = start(ana, vendor, "profile.email:read", prompt="consent")
    assert forced.page.status_code == 200
