"""Profile, preferences and history through the SDK against the served
store: round trips, ETags, paging, labels and the problems on the way."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from client import (
    Budget,
    Communication,
    Item,
    NewEvent,
    PostalAddress,
    Preferences,
    Profile,
    Shopping,
    VRMError,
)
from tests.client.conftest import LoggedIn

START = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def test_profile_round_trips(logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    written = sdk.replace_profile(
        Profile(
            given_name="Ada",
            family_name="Lovelace",
            email="ada@example.org",
            postal_address=PostalAddress(locality="London", country="GB"),
            birth_date=date(1815, 12, 10),
        )
    )
    read = sdk.profile()
    assert read == written
    assert read.model_dump(exclude_none=True) == {
        "given_name": "Ada",
        "family_name": "Lovelace",
        "email": "ada@example.org",
        "postal_address": {"locality": "London", "country": "GB"},
        "birth_date": date(1815, 12, 10),
    }
    assert read.etag is not None
    assert read.etag == written.etag


def test_profile_patch_with_a_stale_etag_is_412_and_names_the_current_one(
    logged_in: LoggedIn,
) -> None:
    sdk = logged_in.sdk
    first = sdk.replace_profile(Profile(given_name="Ada"))
    second = sdk.patch_profile({"family_name": "Byron"}, if_match=first.etag)
    assert (second.given_name, second.family_name) == ("Ada", "Byron")
    with pytest.raises(VRMError) as refused:
        sdk.patch_profile({"given_name": None}, if_match=first.etag)
    error = refused.value
    assert (error.status, error.type) == (412, "urn:vrm:problem:precondition-failed")
    assert error.extra["current_etag"] == second.etag
    assert sdk.profile().given_name == "Ada"


def test_preferences_round_trip_keeps_amounts_and_free_values(logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    preferences = Preferences(
        communication=Communication(channels=["email", "post"], frequency="monthly"),
        shopping=Shopping(
            sizes={"shoes": "38"}, budget=Budget(amount=Decimal("150.00"), currency="EUR")
        ),
        dietary=["vegetarian"],
        free={"tea": "green", "cups": 3, "ratio": 1.5, "sugar": False},
    )
    written = sdk.replace_preferences(preferences)
    read = sdk.preferences()
    assert read == written
    assert read.shopping == preferences.shopping
    assert read.free == {"tea": "green", "cups": 3, "ratio": 1.5, "sugar": False}
    assert [type(v) for v in read.free.values()] == [str, int, float, bool]
    patched = sdk.patch_preferences({"dietary": None}, if_match=read.etag)
    assert patched.dietary == []
    assert patched.free == read.free


def test_unknown_profile_member_is_422_naming_it(logged_in: LoggedIn) -> None:
    with pytest.raises(VRMError) as refused:
        logged_in.sdk.patch_profile({"nickname": "Countess"})
    error = refused.value
    assert (error.status, error.type) == (422, "urn:vrm:problem:validation")
    assert [e["field"] for e in error.extra["errors"]] == ["nickname"]


def _event(n: int) -> NewEvent:
    return NewEvent(
        vendor="Livraria Lello",
        type="purchase",
        occurred_at=START + timedelta(days=n),
        items=[Item(name=f"Book {n}", amount=Decimal("12.50"))],
        amount=Decimal("12.50"),
        currency="EUR",
    )


def test_history_iterates_every_page_newest_first(logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    added = [sdk.add_event(_event(n)) for n in range(7)]
    first = sdk.history_page(limit=3)
    assert len(first.items) == 3
    assert first.next_cursor is not None
    listed = list(sdk.history(page_size=3))
    assert [e.id for e in listed] == [e.id for e in reversed(added)]
    assert listed[0].items[0].amount == Decimal("12.50")
    assert listed[0].source == "customer"


def test_history_filters_reach_every_page(logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    for n in range(5):
        sdk.add_event(_event(n))
    since = START + timedelta(days=2)
    listed = list(sdk.history(since=since, page_size=2))
    assert [e.occurred_at for e in listed] == [START + timedelta(days=n) for n in (4, 3, 2)]


def test_label_an_event_as_a_gift(logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    event = sdk.add_event(_event(0))
    other = sdk.add_event(_event(1))
    assert event.etag is not None
    labelled = sdk.label_event(event.id, ["gift"], if_match=event.etag)
    assert labelled.labels == ["gift"]
    assert labelled.etag != event.etag
    assert sdk.event(event.id).labels == ["gift"]
    assert [e.id for e in sdk.history(label="gift")] == [event.id]
    assert other.labels == []


def test_deleted_event_is_404_with_its_problem_details(logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    event = sdk.add_event(_event(0))
    sdk.delete_event(event.id)
    with pytest.raises(VRMError) as refused:
        sdk.event(event.id)
    error = refused.value
    assert (error.status, error.type, error.instance) == (
        404,
        "urn:vrm:problem:not-found",
        f"/api/v1/me/history/{event.id}",
    )
    assert error.title == "Not found"


def test_page_size_out_of_range_is_422_naming_the_limit(logged_in: LoggedIn) -> None:
    with pytest.raises(VRMError) as refused:
        list(logged_in.sdk.history(page_size=0))
    assert refused.value.status == 422
    assert [e["field"] for e in refused.value.extra["errors"]] == ["query.limit"]
