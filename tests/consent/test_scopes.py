"""Scope grammar, purposes and RFC 9396 details: pure rules, no server."""

from __future__ import annotations

import pytest

from consent.policy import Access, ScopeError, parse_scope, parse_scopes, scope_string, within
from consent.scopes import DetailsError, data_request, parse_retention


@pytest.mark.parametrize(
    ("text", "access"),
    [
        ("profile:read", Access("profile", None, "read")),
        ("profile.email:read", Access("profile", "email", "read")),
        ("preferences.dietary:read", Access("preferences", "dietary", "read")),
        ("history:read", Access("history", None, "read")),
        ("history:write", Access("history", None, "write")),
    ],
)
def test_scopes_name_a_category_or_field_and_an_action(text: str, access: Access) -> None:
    assert parse_scope(text) == access
    assert access.scope == text


@pytest.mark.parametrize(
    "text",
    [
        "profile",
        "profile:delete",
        "profile:write",
        "profile.shoe_size:read",
        "history.notes:read",
        "account:read",
        "medical:read",
        "Profile:read",
        "profile.email.x:read",
        "",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_a_category_covers_its_fields_and_duplicates_fold() -> None:
    accesses, openid = parse_scopes("profile.email:read profile:read openid profile:read")
    assert accesses == [Access("profile", None, "read")]
    assert openid is True
    assert scope_string(accesses, openid) == "openid profile:read"


def test_within_is_the_intersection() -> None:
    whole = [parse_scope("profile:read")]
    email = [parse_scope("profile.email:read")]
    assert within(whole, email) == email
    assert within(email, whole) == email
    assert within([parse_scope("history:read")], whole) == []
    assert within([parse_scope("history:write")], [parse_scope("history:read")]) == []


def test_a_data_request_needs_a_known_purpose() -> None:
    with pytest.raises(ScopeError, match="purpose"):
        data_request(scope="profile:read", purpose=None, authorization_details=None)
    with pytest.raises(ScopeError, match="unknown purpose"):
        data_request(scope="profile:read", purpose="dpv:Spying", authorization_details=None)
    request = data_request(scope="openid", purpose=None, authorization_details=None)
    assert request.accesses == []
    assert request.openid is True


def test_details_and_scope_must_agree_on_the_purpose() -> None:
    detail = {
        "type": "urn:vrm:consent:data-access",
        "datatypes": ["history"],
        "actions": ["read"],
        "purpose": "dpv:Marketing",
    }
    with pytest.raises(DetailsError, match="different purposes"):
        data_request(
            scope="profile:read", purpose="dpv:ServiceProvision", authorization_details=[detail]
        )
    both = data_request(scope="profile.email:read", purpose=None, authorization_details=[detail])
    assert [a.scope for a in both.accesses] == ["history:read", "profile.email:read"]
    assert both.purpose == "dpv:Marketing"


def test_details_may_not_mix_purposes_or_expiries() -> None:
    base = {"type": "urn:vrm:consent:data-access", "datatypes": ["profile"], "actions": ["read"]}
    mixed = [{**base, "purpose": "dpv:Marketing"}, {**base, "purpose": "dpv:CustomerCare"}]
    with pytest.raises(DetailsError, match="same purpose"):
        data_request(scope=None, purpose=None, authorization_details=mixed)
    past = [{**base, "purpose": "dpv:Marketing", "expires_at": "2020-01-01T00:00:00Z"}]
    with pytest.raises(DetailsError, match="past"):
        data_request(scope=None, purpose=None, authorization_details=past)


@pytest.mark.parametrize(("text", "days"), [("P30D", 30), ("P6M", 180), ("P1Y", 365), ("P2W", 14)])
def test_retention_is_an_iso_duration(text: str, days: int) -> None:
    assert parse_retention(text).days == days


@pytest.mark.parametrize("text", ["P", "30D", "P1H", "PT1H", "forever", "P-1D"])
def test_other_retentions_are_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_retention(text)


def test_scopes_this_server_does_not_know_are_left_out() -> None:
    """OIDC Core 3.1.2.1: unknown scope values SHOULD be ignored."""
    accesses, openid = parse_scopes("offline_access profile.email:read history:delete x:y")
    assert accesses == [Access("profile", "email", "read")]
    assert openid is False


def test_standard_oidc_scopes_become_the_profile_fields_they_name() -> None:
    accesses, openid = parse_scopes("openid profile email phone address")
    assert openid is True
    assert scope_string(accesses, openid) == (
        "openid profile.birth_date:read profile.email:read profile.family_name:read"
        " profile.given_name:read profile.language:read profile.phone:read"
        " profile.postal_address:read"
    )


def test_a_sign_in_with_standard_claims_needs_no_purpose_but_data_does() -> None:
    signed_in = data_request(
        scope="openid email offline_access", purpose=None, authorization_details=None
    )
    assert signed_in.purpose == "dpv:ServiceProvision"
    assert signed_in.accesses == [Access("profile", "email", "read")]
    with pytest.raises(ScopeError, match="purpose"):
        data_request(scope="openid email history:read", purpose=None, authorization_details=None)
    with pytest.raises(ScopeError, match="purpose"):
        data_request(scope="email", purpose=None, authorization_details=None)
    with pytest.raises(ScopeError, match="at least one scope"):
        data_request(scope="offline_access", purpose=None, authorization_details=None)
