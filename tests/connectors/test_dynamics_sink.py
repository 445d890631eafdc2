"""The dynamics sink against a fake Dataverse built from Microsoft's Web
API documentation (tests/connectors/fake_dataverse.py), not a live
environment. Tested here: the exact requests for an upsert, a find and a
field clear; a subject containing a quote; paging; retries; errors; and
that nothing unmapped is ever sent."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator

import httpx
import pytest

from connectors.mapping import FieldMap
from connectors.sinks import Event
from connectors.sinks.dynamics import DYNAMICS, DynamicsError, DynamicsSink, key_literal
from tests.connectors.fake_dataverse import (
    API,
    ORG,
    TOKEN,
    FakeDataverse,
    error,
    parts_of,
    payload_of,
)

HEADERS = {
    "authorization": f"Bearer {TOKEN}",
    "accept": "application/json",
    "odata-maxversion": "4.0",
    "odata-version": "4.0",
}
SELECT = (
    "$select=firstname,lastname,emailaddress1,telephone1,address1_line1,address1_city,"
    "address1_stateorprovince,address1_postalcode,address1_country"
)
NOTHING = {
    "firstname": None,
    "lastname": None,
    "emailaddress1": None,
    "telephone1": None,
    "address1": None,
}


@pytest.fixture
def fake() -> FakeDataverse:
    return FakeDataverse()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sink(fake: FakeDataverse, sleeps: list[float]) -> Iterator[DynamicsSink]:
    s = DynamicsSink(ORG, TOKEN, transport=httpx.MockTransport(fake), sleep=sleeps.append)
    yield s
    s.close()


def _sent(request: httpx.Request) -> tuple[str, str, dict[str, str], object]:
    """Method, the URL as sent (path and query, percent-encoding kept), the
    headers and the JSON body."""
    headers = {k: v for k, v in request.headers.items() if k not in ("host", "content-length")}
    headers.pop("accept-encoding", None)
    headers.pop("connection", None)
    headers.pop("user-agent", None)
    is_json = headers.get("content-type") == "application/json"
    body = json.loads(request.content) if request.content and is_json else None
    return request.method, request.url.raw_path.decode(), headers, body


def test_upsert_creates_then_updates_the_contact_named_by_its_alternate_key(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    sink.upsert("sub-1", {"firstname": "Ana", "emailaddress1": "ana@example.org"})
    sink.upsert("sub-1", {"telephone1": "+351 21 000 0000"})

    upsert_headers = {**HEADERS, "content-type": "application/json", "if-none-match": "null"}
    assert [_sent(r) for r in fake.requests] == [
        (
            "PATCH",
            "/api/data/v9.2/contacts(vrm_subject='sub-1')",
            upsert_headers,
            {"firstname": "Ana", "emailaddress1": "ana@example.org"},
        ),
        (
            "PATCH",
            "/api/data/v9.2/contacts(vrm_subject='sub-1')",
            upsert_headers,
            {"telephone1": "+351 21 000 0000"},
        ),
    ]
    [row] = fake.rows.values()
    assert row == {
        "vrm_subject": "sub-1",
        "firstname": "Ana",
        "emailaddress1": "ana@example.org",
        "telephone1": "+351 21 000 0000",
    }


def test_find_by_subject_with_a_quote_doubles_it_and_finds_that_contact_only(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    subject = "o'brien/1 x"
    sink.upsert(subject, {"lastname": "O'Brien"})
    sink.upsert("o", {"lastname": "Other"})
    fake.requests.clear()

    assert sink.find(subject) == {**NOTHING, "lastname": "O'Brien"}
    assert sink.find("o'brien") is None
    assert [_sent(r) for r in fake.requests] == [
        (
            "GET",
            f"/api/data/v9.2/contacts(vrm_subject='o''brien%2F1%20x')?{SELECT}",
            {**HEADERS, "if-none-match": "null"},
            None,
        ),
        (
            "GET",
            f"/api/data/v9.2/contacts(vrm_subject='o''brien')?{SELECT}",
            {**HEADERS, "if-none-match": "null"},
            None,
        ),
    ]
    assert fake.by_subject(subject) is not None


def test_fake_refuses_a_quote_that_is_not_doubled(fake: FakeDataverse) -> None:
    # The fake is strict, so the test above proves the doubling.
    with httpx.Client(transport=httpx.MockTransport(fake), headers=HEADERS) as client:
        r = client.get(f"{API}/contacts(vrm_subject='o'brien')?$select=lastname")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith("There is an unterminated literal")
    assert key_literal("o'brien") == "'o''brien'"


def test_postal_address_is_spread_over_the_address1_columns(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    address = {
        "street_address": "Rua das Flores 12",
        "locality": "Lisboa",
        "region": "Lisboa",
        "postal_code": "1200-195",
        "country": "PT",
    }
    sink.upsert("sub-1", {"address1": address})

    assert json.loads(fake.requests[0].content) == {
        "address1_line1": "Rua das Flores 12",
        "address1_city": "Lisboa",
        "address1_stateorprovince": "Lisboa",
        "address1_postalcode": "1200-195",
        "address1_country": "PT",
    }
    assert sink.find("sub-1") == {**NOTHING, "address1": address}


def test_subjects_pages_through_next_link_as_given() -> None:
    fake = FakeDataverse(page=2)
    paged = DynamicsSink(ORG, TOKEN, transport=httpx.MockTransport(fake))
    try:
        for n in range(5):
            paged.upsert(f"sub-{n}", {"lastname": f"L{n}"})
        fake.rows["not-ours"] = {"lastname": "Added in the CRM by hand"}
        fake.requests.clear()

        assert paged.subjects() == [f"sub-{n}" for n in range(5)]
    finally:
        paged.close()
    sent = [_sent(r) for r in fake.requests]
    assert [s[1] for s in sent] == [
        "/api/data/v9.2/contacts?$select=vrm_subject&$filter=vrm_subject%20ne%20null",
        "/api/data/v9.2/contacts?$select=vrm_subject&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E",
        "/api/data/v9.2/contacts?$select=vrm_subject&$skiptoken=%3Ccookie%20pagenumber=%223%22%20/%3E",
    ]
    page_headers = {**HEADERS, "if-none-match": "null", "prefer": "odata.maxpagesize=1000"}
    assert all(s[0] == "GET" and s[2] == page_headers for s in sent)


def test_a_next_link_to_another_host_is_not_followed(fake: FakeDataverse) -> None:
    fake.page = 1
    fake.next_link_base = "https://elsewhere.example/api/data/v9.2"
    s = DynamicsSink(ORG, TOKEN, transport=httpx.MockTransport(fake))
    try:
        s.upsert("sub-1", {"lastname": "A"})
        s.upsert("sub-2", {"lastname": "B"})
        with pytest.raises(DynamicsError, match="nextLink leaves its Web API"):
            s.subjects()
    finally:
        s.close()
    assert {r.url.host for r in fake.requests} == {"contoso.crm4.dynamics.com"}


def test_clearing_fields_sends_null_and_keeps_the_rest(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    sink.upsert("sub-1", {"firstname": "Ana", "emailaddress1": "ana@example.org"})
    fake.requests.clear()

    sink.delete_fields("sub-1", ["emailaddress1"])

    assert [_sent(r) for r in fake.requests] == [
        (
            "PATCH",
            f"/api/data/v9.2/contacts(vrm_subject='sub-1')?{SELECT}",
            {
                **HEADERS,
                "content-type": "application/json",
                "if-match": "*",
                "prefer": "return=representation",
            },
            {"emailaddress1": None},
        )
    ]
    [row] = fake.rows.values()
    assert row == {"vrm_subject": "sub-1", "firstname": "Ana", "emailaddress1": None}


def test_a_contact_with_no_field_left_is_deleted(sink: DynamicsSink, fake: FakeDataverse) -> None:
    sink.upsert("sub-1", {"emailaddress1": "ana@example.org", "address1": {"locality": "Porto"}})
    fake.requests.clear()

    sink.delete_fields("sub-1", ["emailaddress1", "address1"])

    assert [(r.method, r.url.raw_path.decode()) for r in fake.requests] == [
        ("PATCH", f"/api/data/v9.2/contacts(vrm_subject='sub-1')?{SELECT}"),
        ("DELETE", "/api/data/v9.2/contacts(vrm_subject='sub-1')"),
    ]
    assert json.loads(fake.requests[0].content) == {
        "emailaddress1": None,
        "address1_line1": None,
        "address1_city": None,
        "address1_stateorprovince": None,
        "address1_postalcode": None,
        "address1_country": None,
    }
    assert _sent(fake.requests[1])[2] == HEADERS
    assert fake.rows == {}
    assert sink.find("sub-1") is None


def test_clearing_fields_of_an_absent_contact_creates_nothing(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    sink.delete_fields("sub-1", ["emailaddress1"])

    assert [r.method for r in fake.requests] == ["PATCH"]  # If-Match: * answered 404
    assert fake.rows == {}


def test_upsert_many_sends_one_batch_change_set(sink: DynamicsSink, fake: FakeDataverse) -> None:
    sink.upsert_many(
        [
            ("sub-1", {"firstname": "Ana"}),
            ("sub-2", {"firstname": "Bo"}),
            ("sub-1", {"lastname": "Silva", "firstname": None}),
        ]
    )

    [request] = fake.requests
    assert request.method == "POST"
    assert request.url.raw_path == b"/api/data/v9.2/$batch"
    content_type = request.headers["content-type"]
    assert {k: v for k, v in _sent(request)[2].items() if k != "content-type"} == {
        **HEADERS,
        "if-none-match": "null",
    }
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + request.content
    [changeset] = parts_of(email.message_from_bytes(raw, policy=email.policy.HTTP))
    parts = [payload_of(p).decode() for p in parts_of(changeset)]
    assert parts == [
        f"PATCH {API}/contacts(vrm_subject='sub-1') HTTP/1.1\r\n"
        "Content-Type: application/json\r\n\r\n"
        '{"firstname": null, "lastname": "Silva"}',
        f"PATCH {API}/contacts(vrm_subject='sub-2') HTTP/1.1\r\n"
        "Content-Type: application/json\r\n\r\n"
        '{"firstname": "Bo"}',
    ]
    assert sorted(fake.rows.values(), key=lambda r: r["vrm_subject"]) == [
        {"vrm_subject": "sub-1", "firstname": None, "lastname": "Silva"},
        {"vrm_subject": "sub-2", "firstname": "Bo"},
    ]


def test_a_refused_batch_changes_nothing_and_names_the_error(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    with pytest.raises(DynamicsError) as raised:
        sink.upsert_many([("sub-1", {"lastname": "Silva"}), ("sub-2", {"lastname": "x" * 51})])

    assert str(raised.value) == (
        "Dataverse refused to upsert contacts (400): 0x80044331 A validation error occurred. "
        "The length of the 'lastname' attribute of the 'contact' entity exceeded the maximum "
        "allowed length of '50'."
    )
    assert fake.rows == {}


def test_429_is_retried_after_at_least_retry_after(
    sink: DynamicsSink, fake: FakeDataverse, sleeps: list[float]
) -> None:
    fake.faults.append(
        error(
            429,
            "0x80072322",
            "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            **{"Retry-After": "7"},
        )
    )

    sink.upsert("sub-1", {"firstname": "Ana"})

    assert len(sleeps) == 1
    assert sleeps[0] >= 7
    assert [r.method for r in fake.requests] == ["PATCH", "PATCH"]
    assert fake.by_subject("sub-1") is not None


def test_a_5xx_is_retried(sink: DynamicsSink, fake: FakeDataverse, sleeps: list[float]) -> None:
    fake.faults.append(error(503, "", "Service Unavailable"))

    assert sink.find("sub-1") is None

    assert len(sleeps) == 1
    assert [r.method for r in fake.requests] == ["GET", "GET"]


def test_a_refusal_is_one_line_with_dataverse_code_and_message_never_the_token(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    fake.faults.append(
        error(403, "0x80040220", f"Principal user is missing prvWriteContact\r\n{TOKEN}")
    )

    with pytest.raises(DynamicsError) as raised:
        sink.upsert("sub-1", {"lastname": "Silva"})

    message = str(raised.value)
    assert message == (
        "Dataverse refused to upsert a contact (403): 0x80040220 Principal user is missing "
        "prvWriteContact [token]"
    )
    assert TOKEN not in message
    assert TOKEN not in repr(raised.value)


def test_no_answer_is_an_error_that_names_the_host_only(sleeps: list[float]) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    s = DynamicsSink(ORG, TOKEN, transport=httpx.MockTransport(down), sleep=sleeps.append)
    try:
        with pytest.raises(DynamicsError) as raised:
            s.find("sub-1")
    finally:
        s.close()
    assert str(raised.value) == "Dataverse at contoso.crm4.dynamics.com does not answer"
    assert len(sleeps) == 5  # every attempt but the last waited


def test_unmapped_fields_never_appear_in_any_request(
    sink: DynamicsSink, fake: FakeDataverse
) -> None:
    mapping = FieldMap(DYNAMICS)
    profile = {
        "given_name": "Ana",
        "email": "ana@example.org",
        "birth_date": "1990-01-01",
        "language": "pt-PT",
    }
    fields = mapping.apply("profile", profile)
    assert fields == {
        "firstname": "Ana",
        "lastname": None,
        "emailaddress1": "ana@example.org",
        "telephone1": None,
        "address1": None,
    }
    stray = {"vrm_subject": "sub-other", "jobtitle": "CEO-SENTINEL", "birth_date": "1990-01-01"}

    sink.upsert("sub-1", {**fields, **stray})
    sink.upsert_many([("sub-2", {**fields, **stray}), ("sub-3", stray)])
    sink.delete_fields("sub-1", ["jobtitle", "birth_date", "vrm_subject"])
    sink.delete_fields("sub-2", ["emailaddress1", "jobtitle"])

    assert fake.requests
    for request in fake.requests:
        sent = request.url.raw_path + request.content
        for word in (b"1990-01-01", b"pt-PT", b"CEO-SENTINEL", b"jobtitle", b"birth_date"):
            assert word not in sent, (word, sent)
        assert b"sub-other" not in sent
    assert sorted(fake.rows[c]["vrm_subject"] for c in fake.rows) == ["sub-1", "sub-2", "sub-3"]


def test_history_is_not_held(sink: DynamicsSink, fake: FakeDataverse) -> None:
    sink.upsert_events([Event("sub-1", "e1", {"type": "order"})])
    sink.delete_events("sub-1")

    assert sink.events_of("sub-1") == []
    assert fake.requests == []


def test_a_subject_column_that_is_not_a_logical_name_is_refused() -> None:
    with pytest.raises(DynamicsError, match="subject_column"):
        DynamicsSink(ORG, TOKEN, subject_column="vrm_subject)?$x=")
