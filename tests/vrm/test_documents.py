"""Profile and preferences over HTTP: read, replace, merge patch, ETags.

Every refused write is checked against the stored document afterwards: a
request that fails must leave no trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Person
from tests.kit import assert_problem
from vrm.settings import Settings

PROFILE = "/api/v1/me/profile"
PREFERENCES = "/api/v1/me/preferences"
MERGE_PATCH = "application/merge-patch+json"

EMPTY: dict[str, dict[str, Any]] = {
    PROFILE: {
        "given_name": None,
        "family_name": None,
        "email": None,
        "phone": None,
        "postal_address": None,
        "birth_date": None,
        "language": None,
    },
    PREFERENCES: {
        "communication": None,
        "shopping": None,
        "dietary": [],
        "accessibility": [],
        "free": {},
    },
}

FULL: dict[str, dict[str, Any]] = {
    PROFILE: {
        "given_name": "Ana",
        "family_name": "Lima",
        "email": "ana.lima@example.org",
        "phone": "+351 21 000 0000",
        "postal_address": {
            "street_address": "Rua das Flores 12",
            "locality": "Lisboa",
            "region": None,
            "postal_code": "1200-195",
            "country": "PT",
        },
        "birth_date": "1990-04-01",
        "language": "pt-PT",
    },
    PREFERENCES: {
        "communication": {
            "channels": ["email", "sms"],
            "frequency": "monthly",
            "quiet_hours": {"start": "22:00:00", "end": "07:00:00"},
            "language": "en",
        },
        "shopping": {
            "sizes": {"shoes": "38"},
            "brands": ["Patagonia"],
            "interests": ["books", "hiking"],
            "budget": {"amount": "150.00", "currency": "EUR"},
        },
        "dietary": ["vegetarian"],
        "accessibility": ["large print"],
        "free": {"newsletter.topic": "trails", "max_emails": 2, "likes_surprises": True},
    },
}

SMALL_CHANGE: dict[str, dict[str, Any]] = {
    PROFILE: {"given_name": "Someone else"},
    PREFERENCES: {"dietary": ["vegan"]},
}

both_documents = pytest.mark.parametrize("path", [PROFILE, PREFERENCES], ids=["profile", "prefs"])


def put_full(client: TestClient, path: str) -> Response:
    r: Response = client.put(path, json=FULL[path])
    assert r.status_code == 200, r.text
    return r


def assert_stored(client: TestClient, path: str, body: dict[str, Any], etag: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, r.text
    assert r.json() == body
    assert r.headers["etag"] == etag


# Reading and replacing


@both_documents
def test_new_account_reads_the_empty_document_with_a_strong_etag(ana: Person, path: str) -> None:
    r = ana.client.get(path)
    assert r.status_code == 200, r.text
    assert r.json() == EMPTY[path]
    assert r.headers["etag"].startswith('"1-')
    assert r.headers["cache-control"] == "no-store"


@both_documents
def test_put_stores_the_document_and_returns_its_new_etag(ana: Person, path: str) -> None:
    before = ana.client.get(path).headers["etag"]
    r = put_full(ana.client, path)
    assert r.json() == FULL[path]
    assert r.headers["etag"] != before
    assert_stored(ana.client, path, FULL[path], r.headers["etag"])


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        (PROFILE, {"given_name": "Ana"}, {**EMPTY[PROFILE], "given_name": "Ana"}),
        (PREFERENCES, {"dietary": ["vegan"]}, {**EMPTY[PREFERENCES], "dietary": ["vegan"]}),
    ],
    ids=["profile", "prefs"],
)
def test_put_empties_every_member_not_sent(
    ana: Person, path: str, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    put_full(ana.client, path)
    r = ana.client.put(path, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == expected
    assert_stored(ana.client, path, expected, r.headers["etag"])


# Merge patch (RFC 7396)


@pytest.mark.parametrize("content_type", ["application/json", MERGE_PATCH])
def test_patch_changes_only_the_members_sent(ana: Person, content_type: str) -> None:
    put_full(ana.client, PROFILE)
    r = ana.client.patch(
        PROFILE,
        content=json.dumps({"given_name": "Ana Maria"}),
        headers={"content-type": content_type},
    )
    assert r.status_code == 200, r.text
    expected = {**FULL[PROFILE], "given_name": "Ana Maria"}
    assert r.json() == expected
    assert_stored(ana.client, PROFILE, expected, r.headers["etag"])


def test_patch_null_removes_a_member(ana: Person) -> None:
    put_full(ana.client, PROFILE)
    r = ana.client.patch(PROFILE, json={"phone": None, "birth_date": None})
    assert r.status_code == 200, r.text
    expected = {**FULL[PROFILE], "phone": None, "birth_date": None}
    assert r.json() == expected
    assert_stored(ana.client, PROFILE, expected, r.headers["etag"])


def test_patch_merges_into_a_nested_object(ana: Person) -> None:
    put_full(ana.client, PROFILE)
    r = ana.client.patch(PROFILE, json={"postal_address": {"locality": "Porto"}})
    assert r.status_code == 200, r.text
    address = {**FULL[PROFILE]["postal_address"], "locality": "Porto"}
    expected = {**FULL[PROFILE], "postal_address": address}
    assert r.json() == expected
    assert_stored(ana.client, PROFILE, expected, r.headers["etag"])


def test_patch_merges_and_removes_inside_nested_preferences(ana: Person) -> None:
    put_full(ana.client, PREFERENCES)
    patch = {"communication": {"frequency": "weekly"}, "shopping": {"budget": None}}
    r = ana.client.patch(
        PREFERENCES, content=json.dumps(patch), headers={"content-type": MERGE_PATCH}
    )
    assert r.status_code == 200, r.text
    full = FULL[PREFERENCES]
    expected = {
        **full,
        "communication": {**full["communication"], "frequency": "weekly"},
        "shopping": {**full["shopping"], "budget": None},
    }
    assert r.json() == expected
    assert_stored(ana.client, PREFERENCES, expected, r.headers["etag"])


# ETags and If-Match


def test_every_write_changes_the_etag_even_with_the_same_content(ana: Person) -> None:
    etags = [ana.client.get(PROFILE).headers["etag"]]
    for _ in range(2):
        etags.append(put_full(ana.client, PROFILE).headers["etag"])
    r = ana.client.patch(PROFILE, json={})
    assert r.status_code == 200, r.text
    etags.append(r.headers["etag"])
    assert len(set(etags)) == 4
    assert_stored(ana.client, PROFILE, FULL[PROFILE], etags[-1])


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_write_with_the_current_if_match_succeeds(ana: Person, method: str) -> None:
    etag = ana.client.get(PROFILE).headers["etag"]
    r = ana.client.request(method, PROFILE, json={"given_name": "Ana"}, headers={"if-match": etag})
    assert r.status_code == 200, r.text
    assert r.json() == {**EMPTY[PROFILE], "given_name": "Ana"}
    assert r.headers["etag"] != etag


@both_documents
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_stale_if_match_is_refused_with_412_and_nothing_is_stored(
    ana: Person, path: str, method: str
) -> None:
    stale = ana.client.get(path).headers["etag"]
    current = put_full(ana.client, path).headers["etag"]
    r = ana.client.request(method, path, json=SMALL_CHANGE[path], headers={"if-match": stale})
    assert_problem(r, 412, "precondition-failed", current_etag=current)
    assert_stored(ana.client, path, FULL[path], current)


def test_if_match_star_writes_whatever_the_current_version(ana: Person) -> None:
    put_full(ana.client, PROFILE)
    r = ana.client.put(PROFILE, json={"family_name": "Silva"}, headers={"if-match": "*"})
    assert r.status_code == 200, r.text
    expected = {**EMPTY[PROFILE], "family_name": "Silva"}
    assert_stored(ana.client, PROFILE, expected, r.headers["etag"])


def test_if_match_listing_the_current_etag_among_others_succeeds(ana: Person) -> None:
    etag = ana.client.get(PROFILE).headers["etag"]
    r = ana.client.patch(
        PROFILE, json={"given_name": "Ana"}, headers={"if-match": f'"0-0000000000000000", {etag}'}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {**EMPTY[PROFILE], "given_name": "Ana"}


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_weak_etag_never_matches(ana: Person, method: str) -> None:
    current = put_full(ana.client, PROFILE).headers["etag"]
    r = ana.client.request(
        method, PROFILE, json={"given_name": "Weak"}, headers={"if-match": f"W/{current}"}
    )
    assert_problem(r, 412, "precondition-failed", current_etag=current)
    assert_stored(ana.client, PROFILE, FULL[PROFILE], current)


# Refused writes leave the document as it was

VALIDATION = "urn:vrm:problem:validation"

REFUSED_422 = [
    pytest.param(PROFILE, "PUT", {"given_name": "Ana", "nickname": "Annie"}, "nickname",
                 id="put-unknown-field"),
    pytest.param(PROFILE, "PATCH", {"nickname": "Annie"}, "nickname", id="patch-unknown-field"),
    pytest.param(PROFILE, "PUT", {"postal_address": {"town": "Porto"}}, "postal_address.town",
                 id="put-unknown-nested-field"),
    pytest.param(PREFERENCES, "PUT", {"diet": ["vegan"]}, "diet", id="prefs-unknown-field"),
    pytest.param(PROFILE, "PUT", {"given_name": 42}, "given_name", id="put-number-for-string"),
    pytest.param(PROFILE, "PUT", {"birth_date": "yesterday"}, "birth_date", id="put-bad-date"),
    pytest.param(PREFERENCES, "PUT", {"dietary": "vegan"}, "dietary", id="prefs-string-for-list"),
    pytest.param(PREFERENCES, "PATCH", {"communication": {"channels": ["pigeon"]}},
                 "communication.channels.0", id="prefs-patch-unknown-channel"),
    pytest.param(PROFILE, "PATCH", {"postal_address": {"country": "Portugal"}},
                 "postal_address.country", id="patch-result-invalid"),
    pytest.param(PROFILE, "PATCH", ["given_name", "Ana"], "body", id="patch-array-body"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "method", "body", "field"), REFUSED_422)
def test_invalid_write_is_refused_with_422_naming_the_field(
    ana: Person, path: str, method: str, body: Any, field: str
) -> None:
    etag = put_full(ana.client, path).headers["etag"]
    r = ana.client.request(method, path, json=body)
    problem = assert_problem(r, 422, VALIDATION, errors=ANY)
    assert field in [e["field"] for e in problem["errors"]]
    assert_stored(ana.client, path, FULL[path], etag)


@both_documents
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_malformed_json_is_refused_with_400(ana: Person, path: str, method: str) -> None:
    etag = put_full(ana.client, path).headers["etag"]
    r = ana.client.request(
        method, path, content=b'{"given_name": "Ana",', headers={"content-type": "application/json"}
    )
    assert_problem(r, 400, "urn:vrm:problem:malformed-json")
    assert_stored(ana.client, path, FULL[path], etag)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain", None])
@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_body_that_is_not_json_is_refused_with_415(
    ana: Person, method: str, content_type: str | None
) -> None:
    etag = put_full(ana.client, PROFILE).headers["etag"]
    headers = {"content-type": content_type} if content_type else {}
    r = ana.client.request(method, PROFILE, content=b"given_name=Eve", headers=headers)
    # The middleware's answer names no instance (issue 14: one renderer).
    assert_problem(r, 415, "unsupported-media-type")
    assert_stored(ana.client, PROFILE, FULL[PROFILE], etag)


def _oversized(settings: Settings) -> bytes:
    # Valid JSON apart from its size, so only the limit can refuse it.
    padding = "x" * settings.max_body_bytes
    return json.dumps({"given_name": "Ana", "family_name": padding}).encode()


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_body_announced_over_the_limit_is_refused_with_413(
    ana: Person, settings: Settings, method: str
) -> None:
    etag = put_full(ana.client, PROFILE).headers["etag"]
    r = ana.client.request(method, PROFILE, content=_oversized(settings),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert int(r.request.headers["content-length"]) > settings.max_body_bytes
    assert_problem(r, 413, "payload-too-large")  # the middleware's, with its instance too
    assert_stored(ana.client, PROFILE, FULL[PROFILE], etag)


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_chunked_body_over_the_limit_is_refused_with_413(
    ana: Person, settings: Settings, method: str
) -> None:
    etag = put_full(ana.client, PROFILE).headers["etag"]
    body = _oversized(settings)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 16 * 1024):
            yield body[start : start + 16 * 1024]

    r = ana.client.request(method, PROFILE, content=chunks(),
                           headers={"content-type": "application/json"})  # fmt: skip
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload-too-large")  # the middleware's, with its instance too
    assert_stored(ana.client, PROFILE, FULL[PROFILE], etag)


def test_chunked_body_under_the_limit_is_accepted(ana: Person) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"given_name": '
        yield b'"Ana"}'

    r = ana.client.put(PROFILE, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 200, r.text
    assert r.json() == {**EMPTY[PROFILE], "given_name": "Ana"}


# Errors name fields, never values

SECRET = "Zq7-SECRET-VALUE-4411"


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        (PROFILE, "PUT", {"phone": SECRET}),
        (PROFILE, "PUT", {"email": SECRET}),
        (PROFILE, "PUT", {"nickname": SECRET}),
        (PROFILE, "PATCH", {"postal_address": {"country": SECRET}}),
        (PROFILE, "PATCH", {"language": SECRET}),
        (PREFERENCES, "PATCH", {"shopping": {"budget": {"amount": SECRET, "currency": "EUR"}}}),
    ],
    ids=["phone", "email", "unknown-field", "nested-patch", "language", "prefs-amount"],
)
def test_validation_error_does_not_echo_the_submitted_value(
    ana: Person, path: str, method: str, body: dict[str, Any]
) -> None:
    etag = ana.client.get(path).headers["etag"]
    r = ana.client.request(method, path, json=body)
    assert_problem(r, 422, VALIDATION, errors=ANY)
    assert SECRET not in r.text
    assert_stored(ana.client, path, EMPTY[path], etag)
