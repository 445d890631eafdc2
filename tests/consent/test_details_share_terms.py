"""One request, one set of terms (RFC 9396 authorization_details).

A grant has one expiry and one retention period: a request whose details
state different ones would be granted on terms the customer was never
shown for part of it, so it is refused, whichever detail differs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consent.scopes import DetailsError, data_request

SOON = "2099-01-01T00:00:00Z"
LATER = "2099-06-01T00:00:00Z"
SHARED_TERMS = "every authorization detail of one request must share expiry and retention"


def _detail(datatype: str, **terms: Any) -> dict[str, Any]:
    return {
        "type": "urn:vrm:consent:data-access",
        "datatypes": [datatype],
        "actions": ["read"],
        "purpose": "dpv:Marketing",
        **terms,
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"expires_at": SOON}, {"expires_at": LATER}),
        ({"expires_at": SOON}, {}),  # one unbounded, one not
        ({"retention": "P30D"}, {"retention": "P1Y"}),
        ({"retention": "P30D"}, {}),
        ({"expires_at": SOON, "retention": "P30D"}, {"expires_at": SOON, "retention": "P6M"}),
    ],
)
def test_details_with_different_expiries_or_retentions_are_refused(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    details = [_detail("profile", **first), _detail("history", **second)]
    with pytest.raises(DetailsError) as refused:
        data_request(scope=None, purpose=None, authorization_details=details)
    assert str(refused.value) == SHARED_TERMS


def test_details_with_the_same_terms_are_one_request_on_those_terms() -> None:
    terms = {"expires_at": SOON, "retention": "P30D"}
    request = data_request(
        scope=None,
        purpose=None,
        authorization_details=[_detail("profile", **terms), _detail("history", **terms)],
    )
    assert [a.scope for a in request.accesses] == ["history:read", "profile:read"]
    assert request.purpose == "dpv:Marketing"
    assert request.expires_at == datetime(2099, 1, 1, tzinfo=UTC)
    assert request.retention == "P30D"


def test_an_expiry_a_moment_ahead_is_accepted_and_one_just_past_refused() -> None:
    ahead = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    request = data_request(
        scope=None, purpose=None, authorization_details=[_detail("profile", expires_at=ahead)]
    )
    assert request.expires_at == datetime.fromisoformat(ahead)
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    with pytest.raises(DetailsError) as refused:
        data_request(
            scope=None, purpose=None, authorization_details=[_detail("profile", expires_at=past)]
        )
    assert str(refused.value) == "authorization_details expires_at is in the past"
