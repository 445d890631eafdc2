"""The hubspot sink against a fake of HubSpot's contacts API built from its
documentation (tests/connectors/hubspot_fake.py), not a live account: the
exact requests it sends, batches of 100, contacts found by the subject
exactly, search pages followed with ``after``, fields cleared, a contact
with nothing left archived, 429s and 5xx retried, refusals as one line
without the token, and unmapped fields never sent."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from connectors.mapping import FieldMap
from connectors.sinks import Event
from connectors.sinks import hubspot as hubspot_module
from connectors.sinks.hubspot import HUBSPOT, HubSpotError, HubSpotSink
from tests.connectors.hubspot_fake import CONTACTS, FakeHubSpot, Sent, error_body

API = "https://api.hubapi.com"
ADDRESS = {
    "street_address": "Rua das Flores 12",
    "locality": "Lisboa",
    "postal_code": "1100-001",
    "country": "PT",
}


@pytest.fixture
def fake() -> FakeHubSpot:
    return FakeHubSpot()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sink(fake: FakeHubSpot, sleeps: list[float]) -> Iterator[HubSpotSink]:
    s = HubSpotSink(fake.token, transport=fake.transport, sleep=sleeps.append)
    yield s
    s.close()


def _headers(sent: Sent) -> dict[str, str]:
    return {k: sent.headers[k] for k in ("authorization", "content-type", "accept")}


def test_upsert_of_one_sends_one_documented_batch_upsert(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    sink.upsert("sub-1", {"email": "ana@example.org", "firstname": "Ana", "address": ADDRESS})
    [sent] = fake.sent
    assert (sent.method, sent.url) == ("POST", f"{API}{CONTACTS}/batch/upsert")
    assert _headers(sent) == {
        "authorization": f"Bearer {fake.token}",
        "content-type": "application/json",
        "accept": "application/json",
    }
    assert sent.body == {
        "inputs": [
            {
                "id": "sub-1",
                "idProperty": "vrm_subject",
                "properties": {
                    "email": "ana@example.org",
                    "firstname": "Ana",
                    "address": "Rua das Flores 12",
                    "city": "Lisboa",
                    "state": "",
                    "zip": "1100-001",
                    "country": "PT",
                },
            }
        ]
    }
    assert fake.by_subject("sub-1") == {
        "vrm_subject": "sub-1",
        "email": "ana@example.org",
        "firstname": "Ana",
        "address": "Rua das Flores 12",
        "city": "Lisboa",
        "zip": "1100-001",
        "country": "PT",
    }


def test_upsert_of_250_subjects_is_three_batches_of_at_most_100(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    rows = [(f"sub-{i:03}", {"email": f"c{i}@example.org"}) for i in range(250)]
    sink.upsert_many(rows)
    assert [(s.method, s.url) for s in fake.sent] == [("POST", f"{API}{CONTACTS}/batch/upsert")] * 3
    assert [len(s.body["inputs"]) for s in fake.sent] == [100, 100, 50]
    sent_ids = [item["id"] for s in fake.sent for item in s.body["inputs"]]
    assert sent_ids == [subject for subject, _ in rows]
    assert fake.sent[2].body["inputs"][-1] == {
        "id": "sub-249",
        "idProperty": "vrm_subject",
        "properties": {"email": "c249@example.org"},
    }
    assert len(fake.contacts) == 250


def test_a_subject_named_twice_in_one_batch_is_written_once(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    sink.upsert_many(
        [
            ("s1", {"email": "old@example.org"}),
            ("s1", {"email": "new@example.org", "phone": "+351 912"}),
        ]
    )
    [sent] = fake.sent
    assert sent.body["inputs"] == [
        {
            "id": "s1",
            "idProperty": "vrm_subject",
            "properties": {"email": "new@example.org", "phone": "+351 912"},
        }
    ]


def test_find_reads_the_subject_exactly_not_a_prefix(sink: HubSpotSink, fake: FakeHubSpot) -> None:
    sink.upsert_many(
        [("sub-1", {"email": "a@example.org"}), ("sub-10", {"email": "b@example.org"})]
    )
    fake.sent.clear()
    assert sink.find("sub-1") == {
        "email": "a@example.org",
        "firstname": None,
        "lastname": None,
        "phone": None,
        "address": None,
    }
    [sent] = fake.sent
    assert (sent.method, sent.url) == ("POST", f"{API}{CONTACTS}/batch/read")
    assert sent.body == {
        "idProperty": "vrm_subject",
        "inputs": [{"id": "sub-1"}],
        "properties": [
            "email", "firstname", "lastname", "phone",
            "address", "city", "state", "zip", "country", "vrm_subject",
        ],
    }  # fmt: skip
    assert sink.find("sub") is None
    fake.loose = True  # a lookup that also matches "sub-1" for "sub"
    assert sink.find("sub") is None
    sink.delete_fields("sub", ["email"])
    sink.delete_subject("sub")
    assert fake.by_subject("sub-1") == {"vrm_subject": "sub-1", "email": "a@example.org"}
    assert fake.archived == {}


def test_find_reassembles_the_address(sink: HubSpotSink) -> None:
    sink.upsert("s1", {"lastname": "Silva", "address": ADDRESS})
    found = sink.find("s1")
    assert found is not None
    assert found["address"] == ADDRESS
    assert found["lastname"] == "Silva"


def test_subjects_follow_search_pages_with_after(
    sink: HubSpotSink, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hubspot_module, "SEARCH_PAGE", 2)
    sink.upsert_many([(f"s{i}", {"email": f"{i}@example.org"}) for i in range(5)])
    fake.add({"email": "walk-in@example.org"})  # the vendor's own: no subject
    fake.sent.clear()
    assert sink.subjects() == ["s0", "s1", "s2", "s3", "s4"]
    assert [(s.method, s.url) for s in fake.sent] == [("POST", f"{API}{CONTACTS}/search")] * 3
    first = {
        "filterGroups": [
            {"filters": [{"propertyName": "vrm_subject", "operator": "HAS_PROPERTY"}]}
        ],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": ["vrm_subject"],
        "limit": 2,
    }
    assert [s.body for s in fake.sent] == [first, {**first, "after": "2"}, {**first, "after": "4"}]


def test_subjects_past_one_querys_window_start_after_the_last_id(
    sink: HubSpotSink, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hubspot_module, "SEARCH_PAGE", 2)
    monkeypatch.setattr(hubspot_module, "SEARCH_WINDOW", 4)
    fake.window = 4  # paging past it is refused, as HubSpot refuses past 10,000
    sink.upsert_many([(f"s{i}", {"email": f"{i}@example.org"}) for i in range(7)])
    fake.sent.clear()
    assert sink.subjects() == [f"s{i}" for i in range(7)]
    later = [s.body["filterGroups"][0]["filters"][1:] for s in fake.sent]
    fourth = sorted(fake.contacts, key=int)[3]
    assert later[:3] == [
        [],
        [],
        [{"propertyName": "hs_object_id", "operator": "GT", "value": fourth}],
    ]
    assert [s.body.get("after") for s in fake.sent] == [None, "2", None, "2"]


def test_clearing_fields_sends_empty_strings_and_keeps_the_rest(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    sink.upsert("s1", {"email": "a@example.org", "phone": "+351 912 345 678", "address": ADDRESS})
    contact_id = next(iter(fake.contacts))
    fake.sent.clear()
    sink.delete_fields("s1", ["phone", "address", "birth_date"])
    assert [s.url for s in fake.sent] == [
        f"{API}{CONTACTS}/batch/read",
        f"{API}{CONTACTS}/batch/update",
    ]
    assert fake.sent[1].body == {
        "inputs": [
            {
                "id": contact_id,
                "properties": {
                    "phone": "",
                    "address": "",
                    "city": "",
                    "state": "",
                    "zip": "",
                    "country": "",
                },
            }
        ]
    }
    assert fake.contacts[contact_id] == {"vrm_subject": "s1", "email": "a@example.org"}


def test_an_upsert_of_only_empty_fields_clears_them(sink: HubSpotSink, fake: FakeHubSpot) -> None:
    sink.upsert("s1", {"email": "a@example.org", "firstname": "Ana"})
    sink.upsert("s1", {"firstname": None})
    assert sink.find("s1") == {
        "email": "a@example.org",
        "firstname": None,
        "lastname": None,
        "phone": None,
        "address": None,
    }


def test_a_contact_with_no_field_left_is_deleted_for_good(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    sink.upsert("s1", {"email": "a@example.org", "address": {"locality": "Lisboa"}})
    contact_id = next(iter(fake.contacts))
    fake.sent.clear()
    sink.delete_fields("s1", ["email", "address"])
    assert fake.sent[-1].url == f"{API}{CONTACTS}/gdpr-delete"
    assert fake.sent[-1].body == {"objectId": contact_id}
    assert fake.deleted == {contact_id}
    assert fake.archived == {}
    assert sink.find("s1") is None
    assert sink.subjects() == []


def test_with_removal_archive_a_contact_with_no_field_left_is_archived(
    fake: FakeHubSpot, sleeps: list[float]
) -> None:
    sink = HubSpotSink(fake.token, transport=fake.transport, sleep=sleeps.append, removal="archive")
    sink.upsert("s1", {"email": "a@example.org", "address": {"locality": "Lisboa"}})
    contact_id = next(iter(fake.contacts))
    fake.sent.clear()
    sink.delete_fields("s1", ["email", "address"])
    sink.close()
    assert fake.sent[-1].url == f"{API}{CONTACTS}/batch/archive"
    assert fake.sent[-1].body == {"inputs": [{"id": contact_id}]}
    assert contact_id in fake.archived
    assert fake.deleted == set()


def test_a_removal_hubspot_does_not_know_is_refused(fake: FakeHubSpot) -> None:
    with pytest.raises(HubSpotError, match="removal: 'soft' is not one of permanent, archive"):
        HubSpotSink(fake.token, transport=fake.transport, removal="soft")  # type: ignore[arg-type]


def test_an_empty_upsert_of_an_unknown_subject_creates_nothing(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    sink.upsert("s1", {"email": None, "birth_date": "1990-01-01"})
    assert fake.contacts == {}
    assert [s.url for s in fake.sent] == [f"{API}{CONTACTS}/batch/read"]


def test_delete_subject_deletes_its_contact_and_events_are_not_held(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    sink.upsert("s1", {"email": "a@example.org"})
    sink.upsert_events([Event("s1", "e1", {"total": 10})])
    assert sink.events_of("s1") == []
    sink.delete_events("s1")
    sink.delete_subject("s1")
    sink.delete_subject("s1")  # gone already: nothing to do
    assert fake.contacts == {}
    assert len(fake.deleted) == 1
    assert fake.archived == {}
    assert [s.url.rsplit("/", 1)[1] for s in fake.sent] == ["upsert", "read", "gdpr-delete", "read"]


def test_a_contact_deleted_meanwhile_is_not_an_error(
    fake: FakeHubSpot, sleeps: list[float]
) -> None:
    def gone_first(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/gdpr-delete"):
            fake.contacts.clear()  # someone deleted it between the read and now
        return fake.handle(request)

    sink = HubSpotSink(fake.token, transport=httpx.MockTransport(gone_first), sleep=sleeps.append)
    sink.upsert("s1", {"email": "a@example.org"})
    sink.delete_subject("s1")
    sink.close()
    assert fake.sent[-1].url == f"{API}{CONTACTS}/gdpr-delete"
    assert fake.contacts == {}


def test_429_is_retried_after_at_least_retry_after(
    sink: HubSpotSink, fake: FakeHubSpot, sleeps: list[float]
) -> None:
    fake.failures.append(
        httpx.Response(
            429,
            headers={"Retry-After": "7"},
            json=error_body("You have reached your ten_secondly_rolling limit.", "RATE_LIMITS"),
        )
    )
    sink.upsert("s1", {"email": "a@example.org"})
    assert len(sleeps) == 1
    assert sleeps[0] >= 7
    assert len(fake.sent) == 2
    assert fake.sent[0].body == fake.sent[1].body
    assert fake.by_subject("s1") is not None


def test_429_without_retry_after_waits_hubspots_window(
    sink: HubSpotSink, fake: FakeHubSpot, sleeps: list[float]
) -> None:
    fake.failures.append(
        httpx.Response(
            429,
            headers={
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": "100",
                "X-HubSpot-RateLimit-Remaining": "0",
            },
            json=error_body("You have reached your ten_secondly_rolling limit.", "RATE_LIMITS"),
        )
    )
    sink.upsert("s1", {"email": "a@example.org"})
    assert len(sleeps) == 1
    assert sleeps[0] >= 10
    assert fake.by_subject("s1") is not None


def test_a_5xx_is_retried(sink: HubSpotSink, fake: FakeHubSpot, sleeps: list[float]) -> None:
    fake.failures.append(httpx.Response(502, text="Bad Gateway"))
    sink.upsert("s1", {"email": "a@example.org"})
    assert len(sleeps) == 1
    assert len(fake.sent) == 2
    assert fake.by_subject("s1") is not None


def test_a_5xx_that_persists_is_one_line(
    sink: HubSpotSink, fake: FakeHubSpot, sleeps: list[float]
) -> None:
    fake.failures.extend(httpx.Response(503, text="Service Unavailable") for _ in range(6))
    with pytest.raises(HubSpotError) as raised:
        sink.upsert("s1", {"email": "a@example.org"})
    assert str(raised.value) == "HubSpot refused to upsert contacts (503)"
    assert len(sleeps) == 5


def test_400_is_one_line_with_hubspots_message_and_category() -> None:
    fake = FakeHubSpot(unique=())  # the operator did not create vrm_subject
    sink = HubSpotSink(fake.token, transport=fake.transport, sleep=lambda _: None)
    with pytest.raises(HubSpotError) as raised:
        sink.upsert("s1", {"email": "a@example.org"})
    sink.close()
    assert str(raised.value) == (
        'HubSpot refused to upsert contacts (400): Property "vrm_subject" does not exist '
        "or is not a unique value property [VALIDATION_ERROR]"
    )


def test_401_is_one_line_without_the_token(fake: FakeHubSpot) -> None:
    wrong = "pat-na1-99999999-8888-7777-6666-000000000000"
    sink = HubSpotSink(wrong, transport=fake.transport, sleep=lambda _: None)
    with pytest.raises(HubSpotError) as raised:
        sink.find("s1")
    sink.close()
    text = str(raised.value)
    assert text.startswith(
        "HubSpot refused to read contacts (401): Authentication credentials not found."
    )
    assert text.endswith("[INVALID_AUTHENTICATION]")
    assert "\n" not in text
    assert wrong not in text
    assert fake.token not in text


def test_a_refusal_quoting_the_token_does_not_repeat_it() -> None:
    token = "pat-na1-secret-secret"

    def echo(request: httpx.Request) -> httpx.Response:
        quoted = f"Bad token\n{request.headers['authorization']}"
        return httpx.Response(401, json=error_body(quoted, "INVALID_AUTHENTICATION"))

    sink = HubSpotSink(token, transport=httpx.MockTransport(echo), sleep=lambda _: None)
    with pytest.raises(HubSpotError) as raised:
        sink.subjects()
    sink.close()
    assert str(raised.value) == (
        "HubSpot refused to search contacts (401): "
        "Bad token Bearer [token] [INVALID_AUTHENTICATION]"
    )


def test_a_batch_with_failed_inputs_is_refused(sink: HubSpotSink, fake: FakeHubSpot) -> None:
    failed = {
        "status": "COMPLETE",
        "results": [],
        "errors": [{"status": "error", **error_body("Contact already exists", "CONFLICT")}],
        "numErrors": 1,
    }
    fake.failures.append(httpx.Response(207, json=failed))
    with pytest.raises(HubSpotError) as raised:
        sink.upsert("s1", {"email": "a@example.org"})
    assert str(raised.value) == (
        "HubSpot refused to upsert contacts (of a batch, 1 failed) (207): "
        "Contact already exists [CONFLICT]"
    )


def test_unmapped_fields_never_appear_in_any_request(
    sink: HubSpotSink, fake: FakeHubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hubspot_module, "SEARCH_PAGE", 1)
    profile = {
        "given_name": "Ana",
        "email": "ana@example.org",
        "birth_date": "1990-04-01",
        "language": "pt-PT",
        "postal_address": {**ADDRESS, "formatted": "Rua das Flores 12, Lisboa"},
    }
    fields = FieldMap(HUBSPOT).apply("profile", profile)
    sink.upsert("s1", fields)
    sink.upsert_many(
        [
            (
                "s2",
                {
                    **fields,
                    "birth_date": "1990-04-01",
                    "vrm_subject": "forged",
                    "lifecyclestage": "lead",
                },
            )
        ]
    )
    sink.find("s1")
    sink.subjects()
    sink.delete_fields("s2", ["birth_date", "email", "language"])
    sink.delete_subject("s1")
    assert fake.sent
    for sent in fake.sent:
        raw = sent.raw.decode()
        for unmapped in (
            "1990-04-01",
            "pt-PT",
            "birth_date",
            "language",
            "formatted",
            "forged",
            "lifecyclestage",
        ):
            assert unmapped not in raw, (sent.url, raw)


def test_a_field_that_is_not_text_is_refused_before_any_request(
    sink: HubSpotSink, fake: FakeHubSpot
) -> None:
    with pytest.raises(HubSpotError) as raised:
        sink.upsert("s1", {"email": {"work": "a@example.org"}})
    assert str(raised.value) == "the field email is not text (dict)"
    assert fake.sent == []
