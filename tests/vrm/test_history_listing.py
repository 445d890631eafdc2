"""Listing the history over HTTP: order, cursor pages, filters."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Person
from tests.kit import assert_problem

HISTORY = "/api/v1/me/history"
T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def add(client: TestClient, occurred_at: datetime | str, **fields: Any) -> dict[str, Any]:
    when = occurred_at if isinstance(occurred_at, str) else occurred_at.isoformat()
    body = {"vendor": "Shop", "type": "purchase", "occurred_at": when, **fields}
    r = client.post(HISTORY, json=body)
    assert r.status_code == 201, r.text
    event: dict[str, Any] = r.json()
    return event


def page(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get(HISTORY, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


def rest_of(client: TestClient, cursor: str | None, **params: Any) -> list[str]:
    """Ids on every page after cursor, following next_cursor to the end."""
    seen: list[str] = []
    for _ in range(100):
        if cursor is None:
            return seen
        body = page(client, cursor=cursor, **params)
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
    raise AssertionError("next_cursor never ran out")


def listed(client: TestClient, **params: Any) -> list[str]:
    body = page(client, **params)
    return [e["id"] for e in body["items"]] + rest_of(client, body["next_cursor"], **params)


def twenty_five(client: TestClient) -> list[str]:
    """25 events, added out of order, four to an hour (ties across page ends);
    returns their ids in listing order, as one page gives it."""
    for i in range(25):
        n = (i * 7) % 25  # a fixed shuffle
        add(client, T0 + timedelta(hours=n // 4), notes=f"event {n}")
    everything = page(client, limit=200)
    assert everything["next_cursor"] is None
    return [e["id"] for e in everything["items"]]


def test_list_is_newest_first_by_the_instant_it_occurred(ana: Person) -> None:
    # By string, "09:00+05:00" would sort after "06:00Z"; by instant it is older.
    early = add(ana.client, "2026-01-01T09:00:00+05:00")  # 04:00Z
    late = add(ana.client, "2026-01-01T06:00:00Z")
    middle = add(ana.client, "2026-01-01T00:30:00-05:00")  # 05:30Z
    assert page(ana.client) == {"items": [late, middle, early], "next_cursor": None}


def test_empty_history_lists_nothing(ana: Person) -> None:
    assert page(ana.client) == {"items": [], "next_cursor": None}


def test_pages_return_every_event_exactly_once_in_order(ana: Person) -> None:
    expected = twenty_five(ana.client)
    first = page(ana.client, limit=10)
    second = page(ana.client, limit=10, cursor=first["next_cursor"])
    third = page(ana.client, limit=10, cursor=second["next_cursor"])
    assert [len(p["items"]) for p in (first, second, third)] == [10, 10, 5]
    assert third["next_cursor"] is None
    ids = [e["id"] for p in (first, second, third) for e in p["items"]]
    assert ids == expected
    times = [datetime.fromisoformat(e["occurred_at"]) for p in (first, second) for e in p["items"]]
    assert times == sorted(times, reverse=True)


def test_last_full_page_has_no_next_cursor(ana: Person) -> None:
    for hour in range(4):
        add(ana.client, T0 + timedelta(hours=hour))
    first = page(ana.client, limit=2)
    second = page(ana.client, limit=2, cursor=first["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


def test_cursor_stays_valid_when_events_are_added_between_pages(ana: Person) -> None:
    expected = twenty_five(ana.client)
    first = page(ana.client, limit=10)
    add(ana.client, T0 + timedelta(days=30), notes="newer than the cursor: on an earlier page")
    older = add(ana.client, T0 - timedelta(days=30), notes="older than everything")
    ids = [e["id"] for e in first["items"]] + rest_of(ana.client, first["next_cursor"], limit=10)
    assert ids == [*expected, older["id"]]


def test_cursor_stays_valid_when_events_are_deleted_between_pages(ana: Person) -> None:
    expected = twenty_five(ana.client)
    first = page(ana.client, limit=10)
    cursor_event, ahead = expected[9], expected[14]
    for event_id in (cursor_event, ahead):
        assert ana.client.delete(f"{HISTORY}/{event_id}").status_code == 204
    rest = rest_of(ana.client, first["next_cursor"], limit=10)
    assert rest == [e for e in expected[10:] if e != ahead]


def test_pages_follow_the_filter_they_were_asked_with(ana: Person) -> None:
    gifts = [add(ana.client, T0 + timedelta(hours=h), labels=["gift"]) for h in range(5)]
    for hour in range(5):
        add(ana.client, T0 + timedelta(hours=hour, minutes=30))
    assert listed(ana.client, label="gift", limit=2) == [e["id"] for e in reversed(gifts)]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        base64.urlsafe_b64encode(b'["2026-01-01T10:00:00", "abc"]').decode(),  # naive time
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"offset": 10}').decode(),
    ],
    ids=["word", "not-base64", "naive-time", "numbers", "object"],
)
def test_cursor_this_server_did_not_give_out_is_refused_with_400(ana: Person, cursor: str) -> None:
    add(ana.client, T0)
    r = ana.client.get(HISTORY, params={"cursor": cursor})
    assert_problem(r, 400, "urn:vrm:problem:bad-request")


@pytest.mark.parametrize("limit", [0, 201, -1])
def test_limit_outside_1_to_200_is_refused_with_422(ana: Person, limit: int) -> None:
    r = ana.client.get(HISTORY, params={"limit": limit})
    problem = assert_problem(r, 422, "validation", errors=ANY)
    assert [e["field"] for e in problem["errors"]] == ["query.limit"]


@pytest.mark.parametrize(("limit", "count"), [(1, 1), (200, 3)])
def test_limit_bounds_are_accepted(ana: Person, limit: int, count: int) -> None:
    for hour in range(3):
        add(ana.client, T0 + timedelta(hours=hour))
    assert len(page(ana.client, limit=limit)["items"]) == count


# Filters


def test_vendor_filter_is_exact_and_ignores_case(ana: Person) -> None:
    one = add(ana.client, T0, vendor="Livraria Bertrand")
    two = add(ana.client, T0 + timedelta(hours=1), vendor="livraria BERTRAND")
    add(ana.client, T0 + timedelta(hours=2), vendor="Bertrand")
    add(ana.client, T0 + timedelta(hours=3), vendor="Livraria Bertrand Chiado")
    assert page(ana.client, vendor="LIVRARIA bertrand")["items"] == [two, one]


def test_type_filter_keeps_only_that_type(ana: Person) -> None:
    add(ana.client, T0, type="purchase")
    case = add(ana.client, T0 + timedelta(hours=1), type="support_case")
    add(ana.client, T0 + timedelta(hours=2), type="return")
    assert page(ana.client, type="support_case")["items"] == [case]


def test_label_filter_matches_event_labels_and_item_labels(ana: Person) -> None:
    labelled = add(ana.client, T0, labels=["gift"])
    with_item = add(
        ana.client,
        T0 + timedelta(hours=1),
        items=[{"name": "Scarf", "labels": ["gift"]}, {"name": "Socks"}],
    )
    add(ana.client, T0 + timedelta(hours=2), labels=["private"])
    add(ana.client, T0 + timedelta(hours=3), items=[{"name": "Hat", "labels": ["not_for_me"]}])
    assert page(ana.client, label="gift")["items"] == [with_item, labelled]


def test_since_and_until_select_a_half_open_interval(ana: Person) -> None:
    at = [add(ana.client, T0 + timedelta(hours=h)) for h in range(4)]  # 10:00 to 13:00 UTC
    # 11:00Z written with another offset: the bounds compare instants.
    since, until = "2026-01-01T12:00:00+01:00", "2026-01-01T13:00:00Z"
    assert page(ana.client, since=since, until=until)["items"] == [at[2], at[1]]


def test_since_alone_includes_the_instant_itself(ana: Person) -> None:
    at = [add(ana.client, T0 + timedelta(hours=h)) for h in range(3)]
    assert page(ana.client, since=at[1]["occurred_at"])["items"] == [at[2], at[1]]


def test_until_alone_excludes_the_instant_itself(ana: Person) -> None:
    at = [add(ana.client, T0 + timedelta(hours=h)) for h in range(3)]
    assert page(ana.client, until=at[1]["occurred_at"])["items"] == [at[0]]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-01-01T10:00:00"},
        {"until": "2026-01-01T10:00:00"},
        {"since": "yesterday"},
        {"type": "theft"},
        {"label": "secret"},
    ],
    ids=["naive-since", "naive-until", "not-a-time", "type", "label"],
)
def test_invalid_filter_is_refused_with_422(ana: Person, params: dict[str, str]) -> None:
    add(ana.client, T0)
    r = ana.client.get(HISTORY, params=params)
    problem = assert_problem(r, 422, "validation", errors=ANY)
    assert [e["field"] for e in problem["errors"]] == [f"query.{next(iter(params))}"]


def test_customers_list_only_their_own_events(ana: Person, bob: Person) -> None:
    add(ana.client, T0)
    mine = add(bob.client, T0 + timedelta(hours=1))
    assert page(bob.client) == {"items": [mine], "next_cursor": None}


def test_another_customers_cursor_lists_only_your_own_events(ana: Person, bob: Person) -> None:
    for hour in range(3):
        add(ana.client, T0 + timedelta(hours=hour))
    bobs = add(bob.client, T0 - timedelta(hours=1))
    cursor = page(ana.client, limit=1)["next_cursor"]
    assert page(bob.client, cursor=cursor) == {"items": [bobs], "next_cursor": None}
