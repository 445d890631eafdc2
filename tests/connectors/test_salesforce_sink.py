"""The salesforce sink against a fake of Salesforce's REST API built from
its documentation (tests/connectors/fake_salesforce.py), not a live org:
the exact requests it sends, SOQL escaping and paging, fields cleared and
contacts deleted, limits and outages retried, refusals as one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connectors.mapping import FieldMap
from connectors.sinks import Sink
from connectors.sinks.salesforce import (
    NOT_SHARED,
    SALESFORCE,
    SalesforceError,
    SalesforceSink,
    soql_string,
)
from tests.connectors.fake_salesforce import INSTANCE_URL, TOKEN, FakeSalesforce, error

API = "/services/data/v62.0"
SELECT = (
    "SELECT Id, Vrm_Subject__c, FirstName, LastName, Email, Phone, MailingStreet, "
    "MailingCity, MailingState, MailingPostalCode, MailingCountry FROM Contact"
)


@pytest.fixture
def org() -> FakeSalesforce:
    return FakeSalesforce()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sink(org: FakeSalesforce, sleeps: list[float]) -> Iterator[SalesforceSink]:
    s = SalesforceSink(INSTANCE_URL, TOKEN, transport=org.transport, sleep=sleeps.append)
    yield s
    s.close()


def _soql(request: httpx.Request) -> str:
    [q] = parse_qs(urlsplit(str(request.url)).query)["q"]
    return q


def test_the_sink_answers_the_protocol(sink: SalesforceSink) -> None:
    held: Sink = sink
    assert held.events_of("s1") == []


def test_upsert_of_one_is_one_patch_by_external_id(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    sink.upsert("subject-1", {"FirstName": "Ana", "LastName": None, "Email": "ana@example.org"})
    [request] = org.requests
    assert request.method == "PATCH"
    assert str(request.url) == f"{INSTANCE_URL}{API}/sobjects/Contact/Vrm_Subject__c/subject-1"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "FirstName": "Ana",
        "LastName": NOT_SHARED,  # required by Salesforce, not shared: never made up
        "Email": "ana@example.org",
    }
    [contact] = org.contacts.values()
    assert contact["Vrm_Subject__c"] == "subject-1"

    sink.upsert("subject-1", {"Phone": "+351 912 345 678"})
    assert len(org.contacts) == 1
    assert contact["Phone"] == "+351 912 345 678"
    assert contact["FirstName"] == "Ana"


def test_upsert_of_450_subjects_is_three_collection_requests(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    rows = [(f"s{i:03d}", {"Email": f"p{i}@example.org", "LastName": "Silva"}) for i in range(450)]
    sink.upsert_many(rows)
    assert [(r.method, r.url.path) for r in org.requests] == [
        ("PATCH", f"{API}/composite/sobjects/Contact/Vrm_Subject__c")
    ] * 3
    bodies = org.bodies()
    assert [len(b["records"]) for b in bodies] == [200, 200, 50]
    assert all(b["allOrNone"] is False and set(b) == {"allOrNone", "records"} for b in bodies)
    assert bodies[2]["records"][0] == {
        "attributes": {"type": "Contact"},
        "Email": "p400@example.org",
        "LastName": "Silva",
        "Vrm_Subject__c": "s400",
    }
    assert sorted(c["Vrm_Subject__c"] for c in org.contacts.values()) == [r[0] for r in rows]


def test_a_subject_named_twice_in_one_run_is_sent_once(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    sink.upsert_many(
        [("s1", {"Email": "a@example.org", "LastName": "Silva"}), ("s1", {"Phone": "+351 21 000"})]
    )
    [body] = org.bodies()
    assert [r["Vrm_Subject__c"] for r in body["records"]] == ["s1"]
    assert sink.find("s1") == {
        "FirstName": None,
        "LastName": "Silva",
        "Email": "a@example.org",
        "Phone": "+351 21 000",
        "MailingAddress": None,
    }


def test_not_shared_last_name_is_written_only_on_a_new_contact(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    kept = org.add(Vrm_Subject__c="old", LastName="Silva", Email="old@example.org")
    sink.upsert("old", {"Email": "new@example.org"})
    sink.upsert_many([("old", {"Phone": "+351 21 000"}), ("new", {"Email": "n@example.org"})])
    assert org.contacts[kept]["LastName"] == "Silva"
    created = org.by_subject("new")
    assert created is not None
    assert created["LastName"] == NOT_SHARED
    # Salesforce said the new one lacked LastName; only it was sent again.
    assert [[r["Vrm_Subject__c"] for r in b["records"]] for b in org.bodies()[1:]] == [
        ["old", "new"],
        ["new"],
    ]


def test_find_by_subject_exactly_escapes_quotes_and_backslashes(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    subject = "o'brien\\x"
    org.add(Vrm_Subject__c=subject, FirstName="Ana", LastName=NOT_SHARED, MailingCity="Lisboa")
    org.add(Vrm_Subject__c="o'brien", FirstName="Bob", LastName="Brien")
    assert sink.find(subject) == {
        "FirstName": "Ana",
        "LastName": None,
        "Email": None,
        "Phone": None,
        "MailingAddress": {"locality": "Lisboa"},
    }
    [request] = org.requests
    assert (request.method, request.url.path) == ("GET", f"{API}/query")
    assert _soql(request) == f"{SELECT} WHERE Vrm_Subject__c = 'o\\'brien\\\\x'"
    assert soql_string('a\nb\t"c"') == "'a\\nb\\t\\\"c\\\"'"


def test_find_keeps_only_the_exact_subject_when_the_org_ignores_case(
    sleeps: list[float],
) -> None:
    org = FakeSalesforce(case_sensitive=False)
    org.add(Vrm_Subject__c="ABC", LastName="Upper")
    sink = SalesforceSink(INSTANCE_URL, TOKEN, transport=org.transport, sleep=sleeps.append)
    try:
        assert sink.find("abc") is None
        sink.delete_subject("abc")
        assert len(org.contacts) == 1
    finally:
        sink.close()


def test_a_query_is_paged_through_next_records_url(sleeps: list[float]) -> None:
    org = FakeSalesforce(page_size=2)
    for i in range(5):
        org.add(Vrm_Subject__c=f"s{i}", LastName="X")
    org.add(LastName="Created by the vendor's staff")
    sink = SalesforceSink(INSTANCE_URL, TOKEN, transport=org.transport, sleep=sleeps.append)
    assert sink.subjects() == ["s0", "s1", "s2", "s3", "s4"]
    sink.close()
    first, *following = org.requests
    assert _soql(first) == "SELECT Vrm_Subject__c FROM Contact WHERE Vrm_Subject__c != null"
    assert len(following) == 2
    assert all(r.url.path.startswith(f"{API}/query/01g") and not r.url.query for r in following)


@pytest.mark.parametrize(
    "elsewhere", ["https://evil.example/q", "//evil.example/services/data/v62.0/query/x"]
)
def test_a_next_records_url_elsewhere_is_refused_and_the_token_stays_home(
    sink: SalesforceSink, org: FakeSalesforce, elsewhere: str
) -> None:
    page = {
        "totalSize": 3,
        "done": False,
        "records": [],
        "nextRecordsUrl": "https://evil.example/q",
    }
    org.queued.append(httpx.Response(200, json=page))
    with pytest.raises(SalesforceError, match="nextRecordsUrl"):
        sink.subjects()
    assert [r.url.host for r in org.requests] == ["acme.my.salesforce.com"]


def test_fields_are_cleared_with_null(sink: SalesforceSink, org: FakeSalesforce) -> None:
    address = {"street_address": "Rua das Flores 12", "locality": "Lisboa", "country": "PT"}
    sink.upsert("s1", {"Email": "a@example.org", "Phone": "+351 21 000", "MailingAddress": address})
    contact = org.by_subject("s1")
    assert contact is not None
    org.requests.clear()
    sink.delete_fields("s1", ["Phone", "MailingAddress"])
    query, patch = org.requests
    assert (patch.method, patch.url.path) == ("PATCH", f"{API}/sobjects/Contact/{contact['Id']}")
    assert patch.content == (
        b'{"Phone":null,"MailingStreet":null,"MailingCity":null,"MailingState":null,'
        b'"MailingPostalCode":null,"MailingCountry":null}'
    )
    assert contact["Email"] == "a@example.org"
    assert contact["Phone"] is None
    assert contact["MailingCity"] is None


def test_a_contact_with_nothing_left_is_deleted(sink: SalesforceSink, org: FakeSalesforce) -> None:
    sink.upsert("s1", {"Email": "a@example.org", "LastName": "Silva"})
    contact = org.by_subject("s1")
    assert contact is not None
    org.requests.clear()
    sink.delete_fields("s1", ["Email", "LastName"])
    query, delete = org.requests
    assert (delete.method, delete.url.path) == ("DELETE", f"{API}/sobjects/Contact/{contact['Id']}")
    assert org.contacts == {}
    assert sink.find("s1") is None
    sink.delete_fields("s1", ["Email"])  # nothing held: nothing to do


def test_delete_subject_deletes_its_contact(sink: SalesforceSink, org: FakeSalesforce) -> None:
    sink.upsert_many([("s1", {"Email": "a@example.org"}), ("s2", {"Email": "b@example.org"})])
    sink.delete_subject("s1")
    assert sink.subjects() == ["s2"]
    sink.delete_subject("s1")


def test_a_subject_held_twice_is_refused_on_upsert_and_deleted_whole(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    org.add(Vrm_Subject__c="dup", LastName="One")
    org.add(Vrm_Subject__c="dup", LastName="Two")
    with pytest.raises(SalesforceError) as raised:
        sink.upsert("dup", {"Email": "d@example.org"})
    assert str(raised.value) == (
        "several Salesforce contacts hold the subject dup: Vrm_Subject__c must be unique"
    )
    sink.delete_subject("dup")
    assert org.contacts == {}


def test_request_limit_exceeded_is_retried_after_a_backoff(
    sink: SalesforceSink, org: FakeSalesforce, sleeps: list[float]
) -> None:
    org.queued.append(
        error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    )
    sink.upsert("s1", {"Email": "a@example.org", "LastName": "Silva"})
    assert len(org.requests) == 2
    assert org.by_subject("s1") is not None
    [wait] = sleeps
    assert 0.25 <= wait <= 0.5


def test_503_is_retried_honouring_retry_after(
    sink: SalesforceSink, org: FakeSalesforce, sleeps: list[float]
) -> None:
    org.queued.append(httpx.Response(503, headers={"Retry-After": "7"}, text="Service Unavailable"))
    sink.upsert_many([("s1", {"Email": "a@example.org"})])
    assert sleeps == [7.0]
    assert org.by_subject("s1") is not None


def test_a_limit_that_does_not_lift_is_raised_naming_it(
    sink: SalesforceSink, org: FakeSalesforce, sleeps: list[float]
) -> None:
    org.queued += [error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")] * 6
    with pytest.raises(SalesforceError) as raised:
        sink.find("s1")
    assert str(raised.value) == (
        "Salesforce refused to query (403): REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded."
    )
    assert len(sleeps) == 5


def test_a_refused_record_in_a_collection_is_raised_as_one_line(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    rows = [
        ("s1", {"Email": "a@example.org"}),
        ("s2", {"Email": "bob.at.example.org", "FirstName": "Bob"}),
        ("s3", {"Email": "c@example.org"}),
    ]
    with pytest.raises(SalesforceError) as raised:
        sink.upsert_many(rows)
    assert str(raised.value) == (
        "Salesforce refused 1 of 3 contacts; the first, s2: INVALID_EMAIL_ADDRESS: "
        "Email: invalid email address: [value]"
    )
    assert sorted(c["Vrm_Subject__c"] for c in org.contacts.values()) == ["s1", "s3"]


def test_an_error_names_salesforces_code_and_never_the_token(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    echoed = f"Session {TOKEN} expired\nor invalid"
    org.queued.append(error(401, "INVALID_SESSION_ID", echoed))
    with pytest.raises(SalesforceError) as raised:
        sink.delete_subject("s1")
    assert str(raised.value) == (
        "Salesforce refused to query (401): INVALID_SESSION_ID: Session [token] expired or invalid"
    )
    wrong = SalesforceSink(INSTANCE_URL, "not-the-token", transport=org.transport)
    with pytest.raises(SalesforceError, match="INVALID_SESSION_ID") as raised:
        wrong.upsert("s1", {"Email": "a@example.org"})
    assert "not-the-token" not in str(raised.value)
    assert "a@example.org" not in str(raised.value)


def test_unmapped_fields_never_appear_in_a_request(
    sink: SalesforceSink, org: FakeSalesforce
) -> None:
    profile = {
        "given_name": "Ana",
        "family_name": "Silva",
        "email": "ana@example.org",
        "birth_date": "1990-01-01",
        "language": "pt-PT",
        "postal_address": {"locality": "Lisboa", "floor": "3"},
    }
    fields = FieldMap(SALESFORCE).apply("profile", profile)
    sink.upsert("s1", {**fields, "Title": "CEO", "birth_date": "1990-01-01"})
    sink.upsert_many([("s2", {**fields, "Description": "pt-PT"})])
    sink.delete_fields("s1", ["Title", "Email"])
    sent = b" ".join(r.content + str(r.url).encode() for r in org.requests)
    for value in (b"1990-01-01", b"pt-PT", b"Title", b"CEO", b"Description", b"floor", b'"3"'):
        assert value not in sent
    contact = org.by_subject("s1")
    assert contact is not None
    assert {k: v for k, v in contact.items() if k != "Id"} == {
        "Vrm_Subject__c": "s1",
        "FirstName": "Ana",
        "LastName": "Silva",
        "Email": None,
        "Phone": None,
        "MailingStreet": None,
        "MailingCity": "Lisboa",
        "MailingState": None,
        "MailingPostalCode": None,
        "MailingCountry": None,
    }


def test_the_default_mapping_is_valid_and_names_contact_fields() -> None:
    assert FieldMap(SALESFORCE).sink_fields == [
        "FirstName",
        "LastName",
        "Email",
        "Phone",
        "MailingAddress",
    ]


@pytest.mark.parametrize(
    ("url", "kw", "named"),
    [
        ("http://acme.my.salesforce.com", {}, "instance_url"),
        (INSTANCE_URL, {"subject_field": "Vrm_Subject__c = '' OR Id"}, "subject_field"),
        (INSTANCE_URL, {"api_version": "62"}, "api_version"),
    ],
)
def test_a_bad_configuration_is_refused(url: str, kw: dict[str, str], named: str) -> None:
    with pytest.raises(SalesforceError, match=named):
        SalesforceSink(url, TOKEN, **kw)  # type: ignore[arg-type]
