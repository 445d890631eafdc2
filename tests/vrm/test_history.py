"""History events over HTTP: create, read, merge patch, delete.

Listing, pagination and filters are in test_history_listing.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Person
from tests.kit import assert_problem

HISTORY = "/api/v1/me/history"

BOOK: dict[str, Any] = {
    "vendor": "Livraria Bertrand",
    "type": "purchase",
    "occurred_at": "2026-03-14T16:05:00+01:00",
    "items": [
        {"name": "The Very Hungry Caterpillar", "sku": "978-0241003008", "quantity": 1,
         "amount": "9.90", "labels": ["gift"]},
        {"name": "Bookmark", "sku": None, "quantity": 2, "amount": "1.05", "labels": []},
    ],
    "amount": "12.00",
    "currency": "EUR",
    "channel": "store",
    "rating": 4,
    "notes": "Birthday present for my nephew.",
    "labels": [],
}  # fmt: skip


def post_book(client: TestClient, **changes: Any) -> Response:
    r: Response = client.post(HISTORY, json={**BOOK, **changes})
    assert r.status_code == 201, r.text
    return r


def assert_stored(client: TestClient, url: str, last_write: Response) -> None:
    """The event reads back exactly as the last successful write left it."""
    r = client.get(url)
    assert r.status_code == 200, r.text
    assert r.json() == last_write.json()
    assert r.headers["etag"] == last_write.headers["etag"]


def test_posted_event_is_created_with_location_and_etag(ana: Person) -> None:
    r = ana.client.post(HISTORY, json=BOOK)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"{HISTORY}/{body['id']}"
    assert r.headers["etag"].startswith('"1-')
    assert body == {
        **BOOK,
        "source": "customer",
        "id": body["id"],
        "created_at": body["created_at"],
        "updated_at": body["created_at"],
    }
    created = datetime.fromisoformat(body["created_at"])
    assert created.tzinfo is not None
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=5)


def test_event_reads_back_as_it_was_written(ana: Person) -> None:
    created = post_book(ana.client)
    r = ana.client.get(created.headers["location"])
    assert r.status_code == 200, r.text
    assert r.json() == created.json()
    assert r.headers["etag"] == created.headers["etag"]
    assert r.headers["cache-control"] == "no-store"


def test_amounts_keep_their_decimal_digits(ana: Person) -> None:
    r = post_book(ana.client, amount="10.10", items=[{"name": "Pen", "amount": "0.10"}])
    event = ana.client.get(r.headers["location"]).json()
    assert event["amount"] == "10.10"
    assert event["items"] == [
        {"name": "Pen", "sku": None, "quantity": 1, "amount": "0.10", "labels": []}
    ]


def test_occurred_at_keeps_its_instant_and_offset(ana: Person) -> None:
    r = post_book(ana.client, occurred_at="2026-03-14T23:30:00-05:00")
    occurred = datetime.fromisoformat(ana.client.get(r.headers["location"]).json()["occurred_at"])
    assert occurred == datetime(2026, 3, 15, 4, 30, tzinfo=UTC)
    assert occurred.utcoffset() == timedelta(hours=-5)


def test_naive_occurred_at_is_refused_with_422_and_nothing_is_stored(ana: Person) -> None:
    r = ana.client.post(HISTORY, json={**BOOK, "occurred_at": "2026-03-14T16:05:00"})
    problem = assert_problem(r, 422, "validation", errors=ANY)
    assert [e["field"] for e in problem["errors"]] == ["occurred_at"]
    assert ana.client.get(HISTORY).json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source": "Livraria Bertrand"}, "source"),
        ({"type": "theft"}, "type"),
        ({"currency": "euro"}, "currency"),
        ({"rating": 6}, "rating"),
        ({"amount": "9.999"}, "amount"),
        ({"labels": ["secret"]}, "labels.0"),
        ({"items": [{"name": "Pen", "labels": ["mine"]}]}, "items.0.labels.0"),
    ],
    ids=["source", "type", "currency", "rating", "amount-digits", "label", "item-label"],
)
def test_invalid_event_is_refused_with_422_and_nothing_is_stored(
    ana: Person, changes: dict[str, Any], field: str
) -> None:
    r = ana.client.post(HISTORY, json={**BOOK, **changes})
    problem = assert_problem(r, 422, "validation", errors=ANY)
    assert field in [e["field"] for e in problem["errors"]]
    assert ana.client.get(HISTORY).json() == {"items": [], "next_cursor": None}


def test_unknown_event_is_404(ana: Person) -> None:
    r = ana.client.get(f"{HISTORY}/0123456789abcdef0123456789abcdef")
    assert_problem(r, 404, "urn:vrm:problem:not-found")


def test_patch_labels_the_event_and_keeps_the_rest(ana: Person) -> None:
    created = post_book(ana.client)
    r = ana.client.patch(created.headers["location"], json={"labels": ["gift"]})
    assert r.status_code == 200, r.text
    before, after = created.json(), r.json()
    assert after == {**before, "labels": ["gift"], "updated_at": after["updated_at"]}
    assert datetime.fromisoformat(after["updated_at"]) >= datetime.fromisoformat(
        before["updated_at"]
    )
    assert r.headers["etag"] != created.headers["etag"]
    again = ana.client.get(created.headers["location"])
    assert again.json() == after
    assert again.headers["etag"] == r.headers["etag"]


def test_patch_labels_an_item_with_merge_patch_content_type(ana: Person) -> None:
    created = post_book(ana.client)
    items = [dict(item) for item in BOOK["items"]]
    items[1]["labels"] = ["not_for_me"]
    r = ana.client.patch(
        created.headers["location"],
        content=json.dumps({"items": items}),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == items
    assert ana.client.get(created.headers["location"]).json()["items"] == items


def test_patch_null_removes_a_member(ana: Person) -> None:
    created = post_book(ana.client)
    r = ana.client.patch(created.headers["location"], json={"notes": None, "rating": None})
    assert r.status_code == 200, r.text
    assert r.json() == {
        **created.json(),
        "notes": None,
        "rating": None,
        "updated_at": r.json()["updated_at"],
    }


def test_patch_changing_source_is_refused_with_400(ana: Person) -> None:
    created = post_book(ana.client)
    r = ana.client.patch(created.headers["location"], json={"source": "Livraria Bertrand"})
    assert_problem(r, 400, "urn:vrm:problem:bad-request")
    assert_stored(ana.client, created.headers["location"], created)


def test_patch_with_invalid_result_is_refused_with_422(ana: Person) -> None:
    created = post_book(ana.client)
    r = ana.client.patch(created.headers["location"], json={"rating": 9, "labels": ["gift"]})
    problem = assert_problem(r, 422, "validation", errors=ANY)
    assert [e["field"] for e in problem["errors"]] == ["rating"]
    assert_stored(ana.client, created.headers["location"], created)


def test_patch_with_the_current_if_match_succeeds(ana: Person) -> None:
    created = post_book(ana.client)
    r = ana.client.patch(
        created.headers["location"],
        json={"labels": ["gift"]},
        headers={"if-match": created.headers["etag"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["labels"] == ["gift"]


def test_patch_with_a_stale_if_match_is_refused_with_412(ana: Person) -> None:
    created = post_book(ana.client)
    first = ana.client.patch(created.headers["location"], json={"labels": ["gift"]})
    assert first.status_code == 200, first.text
    r = ana.client.patch(
        created.headers["location"],
        json={"labels": ["private"]},
        headers={"if-match": created.headers["etag"]},
    )
    assert_problem(r, 412, "precondition-failed", current_etag=first.headers["etag"])
    assert_stored(ana.client, created.headers["location"], first)


def test_patch_unknown_event_is_404(ana: Person) -> None:
    r = ana.client.patch(f"{HISTORY}/0123456789abcdef0123456789abcdef", json={"labels": []})
    assert_problem(r, 404, "urn:vrm:problem:not-found")


def test_deleted_event_is_gone(ana: Person) -> None:
    created = post_book(ana.client)
    kept = post_book(ana.client, vendor="Mountain Gear Co.")
    r = ana.client.delete(created.headers["location"])
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_problem(ana.client.get(created.headers["location"]), 404, "urn:vrm:problem:not-found")
    assert ana.client.get(HISTORY).json()["items"] == [kept.json()]


def test_deleting_twice_is_404(ana: Person) -> None:
    created = post_book(ana.client)
    assert ana.client.delete(created.headers["location"]).status_code == 204
    r = ana.client.delete(created.headers["location"])
    assert_problem(r, 404, "urn:vrm:problem:not-found")
