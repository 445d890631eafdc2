"""An authorization detail's expiry is judged against the app's clock
(vrm.dbtypes.utcnow, moved by the ``clock`` fixture), like every other
expiry: what is refused as past follows the clock, not the machine's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consent.scopes import DETAIL_TYPE, DetailsError, parse_authorization_details
from tests.kit import Clock

DETAIL = {
    "type": DETAIL_TYPE,
    "datatypes": ["profile"],
    "actions": ["read"],
    "purpose": "dpv:ServiceProvision",
    "expires_at": "2031-05-17T08:00:00Z",
}


def test_detail_expiring_after_the_apps_clock_is_accepted(clock: Clock) -> None:
    clock.now = datetime(2031, 5, 17, 7, 59, 59, tzinfo=UTC)
    (detail,) = parse_authorization_details([DETAIL])
    assert detail.expires_at == datetime(2031, 5, 17, 8, 0, tzinfo=UTC)


def test_detail_expiring_at_the_apps_clock_is_refused_as_past(clock: Clock) -> None:
    clock.now = datetime(2031, 5, 17, 8, 0, tzinfo=UTC)
    with pytest.raises(DetailsError) as caught:
        parse_authorization_details([DETAIL])
    assert str(caught.value) == "authorization_details expires_at is in the past"
