"""A refused request says exactly what is wrong with it, and the discovery
document lists only scopes the server accepts.

The refusal's text is the ``error_description`` a vendor's developer reads
(RFC 6749 4.1.2.1), and the consent page words each access for the
customer: both are part of the contract, so they are pinned whole.
"""

from __future__ import annotations

from typing import Any

import pytest

from consent.policy import OIDC_SCOPES, Access, ScopeError, all_scopes, parse_scope
from consent.scopes import DetailsError, parse_authorization_details, parse_retention

DETAIL = {
    "type": "urn:vrm:consent:data-access",
    "datatypes": ["profile"],
    "actions": ["read"],
    "purpose": "dpv:Marketing",
}


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        ([], "authorization_details must be a non-empty JSON array"),
        (DETAIL, "authorization_details must be a non-empty JSON array"),  # not in an array
        ("profile:read", "authorization_details must be a non-empty JSON array"),
        (
            [{k: v for k, v in DETAIL.items() if k != "purpose"}],
            "authorization_details[0] purpose: Field required",
        ),
        (
            [DETAIL, {**DETAIL, "datatypes": ["profile", 5]}],
            "authorization_details[1] datatypes.1: Input should be a valid string",
        ),
        (
            [DETAIL, {**DETAIL, "purpose": "dpv:CustomerCare"}],
            "every authorization detail of one request must state the same purpose",
        ),
    ],
)
def test_malformed_details_are_refused_with_what_is_wrong(raw: Any, description: str) -> None:
    with pytest.raises(DetailsError) as refused:
        parse_authorization_details(raw)
    assert str(refused.value) == description


def test_a_retention_that_is_no_duration_is_refused_with_an_example() -> None:
    with pytest.raises(ScopeError) as refused:
        parse_retention("forever")
    assert str(refused.value) == ("'forever' is not an ISO 8601 duration such as P30D, P6M or P1Y")


def test_a_whole_category_is_worded_for_the_customer() -> None:
    assert Access("profile", None, "read").describe() == "read your whole profile"
    assert Access("profile", "email", "read").describe() == "read your contact email address"


def test_discovery_lists_each_accepted_scope_once() -> None:
    listed = all_scopes()
    assert len(listed) == len(set(listed))
    data = [s for s in listed if s not in OIDC_SCOPES]
    assert [parse_scope(s).scope for s in data] == data
    assert "history:write" in data
    assert [s for s in data if s.startswith("history")] == ["history:read", "history:write"]
