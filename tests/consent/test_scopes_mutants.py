"""What a vendor may ask for and what it gets (consent/scopes.py), rule by
rule, as pure functions: which access covers which, what a token keeps
under a narrowed grant, the fields a feed tombstone names, and how an
RFC 9396 request is read. Each test pins a rule a surviving mutant showed
nothing held in place (``make mutate``, docs/testing.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent.policy import (
    Access,
    ScopeError,
    all_scopes,
    field_names,
    parse_scope,
    parse_scopes,
    scope_string,
    simplify,
    within,
)
from consent.scopes import (
    DataAccessDetail,
    DetailsError,
    check_purpose,
    data_request,
    parse_authorization_details,
    parse_retention,
)
from tests.kit import Clock

PROFILE_READ = Access("profile", None, "read")
EMAIL = Access("profile", "email", "read")
PHONE = Access("profile", "phone", "read")
HISTORY_READ = Access("history", None, "read")
HISTORY_WRITE = Access("history", None, "write")
DETAIL = {"type": "urn:vrm:consent:data-access", "purpose": "dpv:CustomerCare"}


def _scopes(*texts: str) -> list[Access]:
    return [parse_scope(t) for t in texts]


# -- covering and intersecting ----------------------------------------------


def test_an_access_covers_only_its_own_category_action_and_field() -> None:
    assert PROFILE_READ.covers(EMAIL)
    assert PROFILE_READ.covers(PROFILE_READ)
    assert EMAIL.covers(EMAIL)
    assert not EMAIL.covers(PHONE)
    assert not EMAIL.covers(PROFILE_READ)  # a field never covers its category
    assert not PROFILE_READ.covers(Access("preferences", "email", "read"))
    assert not PROFILE_READ.covers(Access("preferences", None, "read"))
    assert not HISTORY_READ.covers(HISTORY_WRITE)
    assert not HISTORY_WRITE.covers(HISTORY_READ)


def test_within_keeps_what_the_grant_still_allows_field_by_field() -> None:
    # A token for the whole profile under a grant narrowed to two fields
    # keeps those two fields, nothing else.
    narrowed = _scopes("profile.phone:read", "profile.email:read", "preferences:read")
    assert within([PROFILE_READ, HISTORY_READ], narrowed) == [EMAIL, PHONE]
    assert within([EMAIL, HISTORY_WRITE], [PROFILE_READ, HISTORY_READ]) == [EMAIL]
    assert within([PROFILE_READ], []) == []
    assert within([], [PROFILE_READ]) == []
    assert within([EMAIL, PHONE], [EMAIL]) == [EMAIL]


def test_simplify_sorts_folds_and_drops_fields_a_category_covers() -> None:
    assert simplify([HISTORY_WRITE, PHONE, EMAIL, HISTORY_READ, PHONE]) == [
        HISTORY_READ,
        HISTORY_WRITE,
        EMAIL,
        PHONE,
    ]
    assert simplify([EMAIL, PROFILE_READ, Access("preferences", "free", "read")]) == [
        Access("preferences", "free", "read"),
        PROFILE_READ,
    ]
    assert simplify([]) == []


def test_a_scope_string_is_openid_first_then_the_simplified_scopes() -> None:
    assert scope_string([PHONE, EMAIL, HISTORY_READ], True) == (
        "openid history:read profile.email:read profile.phone:read"
    )
    assert scope_string([PHONE, PROFILE_READ], False) == "profile:read"
    assert scope_string([], True) == "openid"
    assert scope_string([], False) == ""


def test_parse_scopes_reads_each_item_once_and_ignores_the_unknown() -> None:
    assert parse_scopes(None) == ([], False)
    assert parse_scopes("") == ([], False)
    assert parse_scopes("  email  openid\thistory:write phone ") == (
        [HISTORY_WRITE, EMAIL, PHONE],
        True,
    )
    assert parse_scopes("profile.email:write OPENID openid:read") == ([], False)


def test_a_field_is_shared_field_by_field_only_from_a_document_for_reading() -> None:
    assert parse_scope("preferences.free:read") == Access("preferences", "free", "read")
    for text, why in [
        ("history.vendor:read", "'history' is not shared field by field"),
        ("preferences.free:write", "'write' is not an action on 'preferences'"),
        ("profile.nickname:read", "unknown field 'nickname' of 'profile'"),
        ("profile.email:read ", "is not a scope of the form"),
        (" profile:read", "is not a scope of the form"),
        ("profile:readx", "'readx' is not an action on 'profile'"),
        ("profile9:read", "is not a scope of the form"),
    ]:
        with pytest.raises(ScopeError, match=why):
            parse_scope(text)


def test_what_the_consent_page_says_each_access_lets_a_vendor_do() -> None:
    assert EMAIL.describe() == "read your contact email address"
    assert HISTORY_WRITE.describe() == (
        "add to your purchase and interaction history (never events you marked private)"
    )
    assert PROFILE_READ.describe() == "read your whole profile"
    # A field without words of its own is named by its name.
    assert Access("profile", "shoe_size", "read").describe() == "read shoe size"


# -- what a vendor can hold: tombstone names --------------------------------


def test_field_names_are_what_a_vendor_can_hold_under_the_accesses() -> None:
    assert field_names([PROFILE_READ]) == {
        "profile.given_name",
        "profile.family_name",
        "profile.email",
        "profile.phone",
        "profile.postal_address",
        "profile.birth_date",
        "profile.language",
    }
    assert field_names([EMAIL, HISTORY_READ]) == {"profile.email", "history"}
    # Writing lets a vendor deposit, never hold: nothing to tell it to drop.
    assert field_names([HISTORY_WRITE]) == set()
    assert field_names([HISTORY_WRITE, EMAIL]) == {"profile.email"}  # and on to the next
    assert field_names([]) == set()


# -- purposes and retention ---------------------------------------------------


def test_a_purpose_is_one_of_the_dpv_terms_listed() -> None:
    assert check_purpose("dpv:Marketing") == "dpv:Marketing"
    for term, why in [(None, "must state its purpose"), ("", "must state its purpose")]:
        with pytest.raises(ScopeError, match=why):
            check_purpose(term)
    with pytest.raises(ScopeError) as unknown:
        check_purpose("dpv:marketing")
    assert str(unknown.value).startswith("unknown purpose 'dpv:marketing'; use one of: dpv:")


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("P1Y2M3W4D", 365 + 60 + 21 + 4),
        ("P999Y", 999 * 365),
        ("P999M", 999 * 30),
        ("P9999W", 9999 * 7),
        ("P99999D", 99999),
        ("P0D", 0),
        ("P1M1D", 31),
    ],
)
def test_retention_adds_up_its_parts(text: str, days: int) -> None:
    assert parse_retention(text) == timedelta(days=days)


@pytest.mark.parametrize(
    "text", ["P1000Y", "P1000M", "P10000W", "P100000D", "P1D1Y", " P1D", "P1D ", "p1d"]
)
def test_a_retention_out_of_bounds_or_order_is_refused(text: str) -> None:
    with pytest.raises(ScopeError, match="is not an ISO 8601 duration"):
        parse_retention(text)


# -- RFC 9396 authorization details ----------------------------------------


def test_a_detail_asks_for_each_field_and_action_it_names() -> None:
    detail = DataAccessDetail.model_validate(
        {**DETAIL, "datatypes": ["profile"], "actions": ["read"], "fields": ["phone", "email"]}
    )
    assert detail.accesses() == [PHONE, EMAIL]
    whole = DataAccessDetail.model_validate(
        {**DETAIL, "datatypes": ["history", "profile"], "actions": ["read"]}
    )
    assert whole.accesses() == [HISTORY_READ, PROFILE_READ]
    both = DataAccessDetail.model_validate(
        {**DETAIL, "datatypes": ["history"], "actions": ["read", "write"], "fields": []}
    )
    assert both.accesses() == [HISTORY_READ, HISTORY_WRITE]


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ({"datatypes": []}, "authorization_details[0] datatypes: "),
        ({"datatypes": ["profile"] * 4}, "authorization_details[0] datatypes: "),
        ({"datatypes": [""]}, "authorization_details[0] datatypes.0: "),
        ({"datatypes": ["p" * 65]}, "authorization_details[0] datatypes.0: "),
        ({"actions": []}, "authorization_details[0] actions: "),
        ({"actions": ["read", "read", "read"]}, "authorization_details[0] actions: "),
        ({"actions": ["delete"]}, "authorization_details[0] actions.0: "),
        ({"fields": ["email"] * 65}, "authorization_details[0] fields: "),
        ({"locations": ["x"]}, "authorization_details[0] locations: "),
        ({"purpose": "dpv:Spying"}, "authorization_details[0] purpose: "),
        ({"retention": "forever"}, "authorization_details[0] retention: "),
        ({"datatypes": ["medical"]}, "unknown data category 'medical'"),
        ({"fields": ["nickname"]}, "unknown field 'nickname' of 'profile'"),
    ],
)
def test_a_bad_detail_is_invalid_authorization_details(
    detail: dict[str, Any], message: str
) -> None:
    good = {**DETAIL, "datatypes": ["profile"], "actions": ["read"]}
    with pytest.raises(DetailsError) as refused:
        parse_authorization_details([good, {**good, **detail}][1:])
    assert str(refused.value).startswith(message)


def test_details_must_be_a_non_empty_array() -> None:
    bad: tuple[Any, ...] = ([], {}, None, "profile:read", {"type": DETAIL["type"]})
    for raw in bad:
        with pytest.raises(DetailsError, match="must be a non-empty JSON array"):
            parse_authorization_details(raw)


def test_a_bad_second_detail_is_named_by_its_index() -> None:
    good = {**DETAIL, "datatypes": ["profile"], "actions": ["read"]}
    with pytest.raises(DetailsError) as refused:
        parse_authorization_details([good, {**good, "actions": ["delete"]}])
    assert str(refused.value).startswith("authorization_details[1] actions.0: ")
    with pytest.raises(DetailsError, match="same purpose"):
        parse_authorization_details([good, {**good, "purpose": "dpv:Marketing"}])


def test_details_expiring_the_instant_they_are_read_are_refused(clock: Clock) -> None:
    instant = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    clock.now = instant
    detail = {**DETAIL, "datatypes": ["profile"], "actions": ["read"]}
    with pytest.raises(ScopeError, match="expires_at is in the past"):
        parse_authorization_details([{**detail, "expires_at": instant.isoformat()}])
    later = (instant + timedelta(microseconds=1)).isoformat()
    assert parse_authorization_details([{**detail, "expires_at": later}])[0].expires_at == (
        instant + timedelta(microseconds=1)
    )


def test_a_request_takes_its_terms_from_its_details() -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    detail = {
        **DETAIL,
        "datatypes": ["history"],
        "actions": ["read"],
        "expires_at": expires.isoformat(),
        "retention": "P6M",
    }
    request = data_request(
        scope="openid profile.email:read",
        purpose="dpv:CustomerCare",
        authorization_details=[detail],
    )
    assert request.accesses == [HISTORY_READ, EMAIL]
    assert request.openid is True
    assert request.purpose == "dpv:CustomerCare"
    assert request.expires_at == expires
    assert request.retention == "P6M"
    assert request.details == [DataAccessDetail.model_validate(detail)]
    plain = data_request(scope="profile:read", purpose="dpv:Marketing", authorization_details=None)
    assert (plain.expires_at, plain.retention, plain.details) == (None, None, None)


def test_a_sign_in_alone_takes_a_purpose_only_if_it_is_known() -> None:
    assert data_request(scope="openid", purpose=None, authorization_details=None).purpose == (
        "dpv:ServiceProvision"
    )
    stated = data_request(scope="openid", purpose="dpv:CustomerCare", authorization_details=None)
    assert stated.purpose == "dpv:CustomerCare"
    with pytest.raises(ScopeError, match="unknown purpose"):
        data_request(scope="openid", purpose="dpv:Spying", authorization_details=None)
    # Standard claims without openid are data, not a sign-in: a purpose is due.
    with pytest.raises(ScopeError, match="must state its purpose"):
        data_request(scope="email profile", purpose=None, authorization_details=None)


def test_discovery_lists_the_standard_scopes_then_ours() -> None:
    assert all_scopes() == [
        "profile",
        "email",
        "phone",
        "address",
        "profile:read",
        "profile.given_name:read",
        "profile.family_name:read",
        "profile.email:read",
        "profile.phone:read",
        "profile.postal_address:read",
        "profile.birth_date:read",
        "profile.language:read",
        "preferences:read",
        "preferences.communication:read",
        "preferences.shopping:read",
        "preferences.dietary:read",
        "preferences.accessibility:read",
        "preferences.free:read",
        "history:read",
        "history:write",
    ]
