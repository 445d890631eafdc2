"""Revocation notices: a grant that ends or shrinks is pushed to the
vendor's notify_uri as a signed Security Event Token, at least once, with
every attempt and the acknowledgement on the audit log."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlmodel import Session, update

from consent.audit import questions
from consent.grants.models import Grant
from consent.notices import delivery, outbox
from consent.notices.models import DELIVERED, PARKED, PENDING, VendorNotice
from consent.vendors.models import Vendor as VendorRow
from tests.conftest import Person
from tests.consent.conftest import ISSUER, Vendor, register_vendor, tokens_for
from tests.kit import Clock
from tests.notices.conftest import Answer, Receiver
from tests.notices.kit import GRANTS, entries, run_once, verified
from tests.notices.kit import outbox as outbox_rows
from vrm.keys.pairwise import pairwise_subject

SCOPE = "profile.email:read preferences:read history:read"
EVENT = f"{ISSUER}/event-type/consent-withdrawn"


def test_a_revocation_is_pushed_as_a_signed_security_event_token(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    token = tokens_for(ana, vendor, SCOPE)
    assert ana.client.delete(f"{GRANTS}/{token['grant_id']}").status_code == 204
    [notice] = outbox_rows(app)
    assert notice.state == PENDING  # written with the revocation, not yet sent
    assert run_once(app) == 1
    [got] = receiver.at("/notices")
    assert got.headers["content-type"] == "application/secevent+jwt"
    header, claims = verified(vendor.client, got.body.decode())
    assert header["typ"] == "secevent+jwt"
    assert header["alg"] == "ES256"
    assert claims["iss"] == ISSUER
    assert claims["aud"] == vendor.client_id
    assert claims["jti"] == notice.jti
    assert "sub" not in claims
    assert "exp" not in claims
    subject = pairwise_subject(app.state.vault, vendor.client_id, ana.id)
    assert claims["sub_id"] == {"format": "opaque", "id": subject}
    event = claims["events"][EVENT]
    assert event["grant_id"] == token["grant_id"]
    assert event["reason"] == "revoked"
    assert event["initiating_entity"] == "user"
    assert event["required_action"] == "delete_copies"
    assert event["categories"] == ["history", "preferences", "profile"]
    assert "profile.email" in event["fields"]
    assert "history" in event["fields"]
    assert abs(claims["iat"] - time.time()) < 60
    [notice] = outbox_rows(app)
    assert (notice.state, notice.attempts, notice.outcome) == (DELIVERED, 1, "202")
    # Pushed once: a second pass sends nothing.
    assert run_once(app) == 0
    assert len(receiver.received) == 1


def test_the_attempt_and_the_acknowledgement_are_on_the_log(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    token = tokens_for(ana, vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    receiver.default = Answer(status=503)
    run_once(app)
    receiver.default = Answer(status=202)
    with Session(app.state.engine) as session:
        session.exec(update(VendorNotice).values(due_at=VendorNotice.created_at))  # type: ignore[call-overload]
        session.commit()
    run_once(app)
    attempted, acknowledged = entries(app, "notice.attempted", "notice.acknowledged")
    assert attempted["type"] == "notice.attempted"
    assert (attempted["attempt"], attempted["outcome"]) == (1, "http 503")
    assert acknowledged["type"] == "notice.acknowledged"
    assert (acknowledged["attempt"], acknowledged["outcome"]) == (2, "202")
    for entry in (attempted, acknowledged):
        assert entry["grant"] == token["grant_id"]
        assert entry["vendor"] == vendor.client_id
        assert entry["reason"] == "revoked"
        assert "customer" in entry  # by pseudonym, never the account id
        assert ana.id not in str(entry)
    # An auditor sees how long the vendor took to hear of the withdrawal.
    log = entries(app)
    found = questions.withdrawals((i, e) for i, e in enumerate(log) if e.get("vendor"))
    [withdrawal] = found
    assert withdrawal.type == "consent.revoked"
    assert withdrawal.acknowledged_after_seconds is not None
    assert 0 <= withdrawal.acknowledged_after_seconds < 60


def test_a_vendor_without_a_notify_uri_gets_no_notice(app: FastAPI, ana: Person) -> None:
    quiet = register_vendor(app, "Quiet Books")
    token = tokens_for(ana, quiet, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    assert outbox_rows(app) == []


def test_a_narrowing_names_only_the_fields_taken_away(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    token = tokens_for(ana, vendor, SCOPE)
    r = ana.client.patch(
        f"{GRANTS}/{token['grant_id']}", json={"scopes": ["preferences:read", "history:read"]}
    )
    assert r.status_code == 200, r.text
    run_once(app)
    [got] = receiver.received
    _, claims = verified(vendor.client, got.body.decode())
    event = claims["events"][EVENT]
    assert event["reason"] == "narrowed"
    assert event["fields"] == ["profile.email"]
    assert event["categories"] == ["profile"]


def test_an_expired_grant_is_ended_and_pushed_without_waiting_for_a_feed_read(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    token = tokens_for(ana, vendor, SCOPE)
    with Session(app.state.engine) as session:
        session.exec(update(Grant).values(expires_at=Grant.created_at))  # type: ignore[call-overload]
        session.commit()
    run_once(app)
    [got] = receiver.received
    _, claims = verified(vendor.client, got.body.decode())
    event = claims["events"][EVENT]
    assert (event["reason"], event["initiating_entity"]) == ("expired", "policy")
    assert event["grant_id"] == token["grant_id"]
    [expired] = entries(app, "consent.expired")
    assert expired["grant"] == token["grant_id"]
    # Once: the next pass neither tombstones nor pushes it again.
    run_once(app)
    assert len(receiver.received) == 1
    assert len(entries(app, "consent.expired")) == 1


def test_a_disabled_vendor_is_told_by_the_operator(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    from consent.vendors import service as vendors

    tokens_for(ana, vendor, SCOPE)
    with Session(app.state.engine) as session:
        vendors.disable(session, app.state.vault, vendor.client_id)
    run_once(app)
    [got] = receiver.received
    _, claims = verified(vendor.client, got.body.decode())
    assert claims["events"][EVENT]["initiating_entity"] == "admin"


def test_an_erased_customer_s_notice_names_only_the_pairwise_subject(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    token = tokens_for(ana, vendor, SCOPE)
    subject = pairwise_subject(app.state.vault, vendor.client_id, ana.id)
    r = ana.client.request("DELETE", "/api/v1/me", json={"password": ana.password})
    assert r.status_code == 204, r.text
    run_once(app)
    [got] = receiver.received
    _, claims = verified(vendor.client, got.body.decode())
    assert claims["sub_id"]["id"] == subject
    event = claims["events"][EVENT]
    assert (event["reason"], event["grant_id"]) == ("account_deleted", token["grant_id"])
    [acknowledged] = entries(app, "notice.acknowledged")
    assert "customer" not in acknowledged
    assert "commitment" not in acknowledged


def test_the_endpoint_down_for_a_while_gets_the_notice_once_it_is_back(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver, clock: Clock
) -> None:
    token = tokens_for(ana, vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    receiver.close()  # nobody listens at the notify_uri
    run_once(app)
    [notice] = outbox_rows(app)
    assert notice.state == PENDING
    assert notice.attempts == 1
    assert notice.outcome is not None
    assert notice.outcome.startswith("no answer")
    assert notice.due_at > clock.now  # backing off
    # Not retried before it is due.
    run_once(app)
    assert outbox_rows(app)[0].attempts == 1
    back = Receiver()
    try:
        with Session(app.state.engine) as session:
            vendor_row = session.get(VendorRow, vendor.client_id)
            assert vendor_row is not None
            vendor_row.notify_uri = back.url("/notices")
            session.add(vendor_row)
            session.commit()
        clock.advance(3600)
        run_once(app)
        assert len(back.received) == 1
        [notice] = outbox_rows(app)
        assert (notice.state, notice.attempts) == (DELIVERED, 2)
        clock.advance(3600)
        run_once(app)
        assert len(back.received) == 1  # applied once
    finally:
        back.close()


def test_a_refusal_parks_the_notice_at_once_with_the_vendor_s_error_code(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    receiver.default = Answer(status=400, body=b'{"err":"invalid_audience","description":"x"}')
    token = tokens_for(ana, vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    run_once(app)
    [notice] = outbox_rows(app)
    assert (notice.state, notice.outcome) == (PARKED, "refused: invalid_audience")
    [attempted] = entries(app, "notice.attempted")
    assert attempted["parked"] is True
    # A code outside RFC 8935's list is not repeated.
    assert delivery._error_code(b'{"err":"<script>"}') == "unknown error code"
    assert delivery._error_code(b"not json") == "unreadable answer"


def test_retries_stop_after_a_day_and_the_operator_can_queue_them_again(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver, clock: Clock
) -> None:
    receiver.default = Answer(status=500)
    token = tokens_for(ana, vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    waits = []
    for _ in range(40):
        run_once(app)
        [notice] = outbox_rows(app)
        if notice.state != PENDING:
            break
        waits.append((notice.due_at - clock.now).total_seconds())
        clock.advance(waits[-1])
    assert notice.state == PARKED
    assert notice.outcome == "http 500"
    # Parked when it was last tried, not still leased to the worker.
    assert notice.due_at == clock.now
    # Backing off: each wait about twice the last (with jitter), capped.
    assert waits[0] <= 10
    assert max(waits) <= 6 * 3600
    assert waits[4] > waits[0] * 4
    assert (notice.due_at - notice.created_at) <= timedelta(days=1)
    attempts = notice.attempts
    with Session(app.state.engine) as session:
        assert outbox.retry(session, vendor_id=vendor.client_id) == 1
    receiver.default = Answer(status=202)
    run_once(app)
    [notice] = outbox_rows(app)
    assert (notice.state, notice.attempts) == (DELIVERED, attempts + 1)


def test_retry_after_is_honoured(app: FastAPI) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    due = delivery.next_attempt(1, now, now, timedelta(seconds=120))
    assert due is not None
    assert due >= now + timedelta(seconds=120)
    assert delivery._retry_after("120") == timedelta(seconds=120)
    assert delivery._retry_after("soon") is None


def test_redirects_are_not_followed(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    receiver.answers["/notices"] = Answer(
        status=307, headers={"Location": receiver.url("/elsewhere")}
    )
    token = tokens_for(ana, vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    run_once(app)
    assert receiver.at("/elsewhere") == []
    [notice] = outbox_rows(app)
    assert notice.outcome == "http 307 (redirects are not followed)"
    assert notice.state == PENDING


def test_a_hanging_endpoint_holds_up_only_its_own_notice(
    app: FastAPI, ana: Person, vendor: Vendor, other_vendor: Vendor, receiver: Receiver
) -> None:
    receiver.answers["/notices"] = Answer(status=202, delay=3.0)
    first = tokens_for(ana, vendor, SCOPE)
    second = tokens_for(ana, other_vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{first['grant_id']}")
    ana.client.delete(f"{GRANTS}/{second['grant_id']}")
    run_once(app, timeout=0.5)
    by_vendor = {n.vendor_id: n for n in outbox_rows(app)}
    assert by_vendor[other_vendor.client_id].state == DELIVERED
    # Given up at the timeout, before the vendor's answer three seconds on
    # (no timed assertion: the outcome says it).
    assert by_vendor[vendor.client_id].outcome == "timeout"


def test_only_https_or_loopback_endpoints_are_posted_to() -> None:
    assert delivery.check_uri("https://shop.example/notices") is None
    assert delivery.check_uri("http://127.0.0.1:9/notices") is None
    assert delivery.check_uri("http://shop.example/notices") == "refused: notify_uri is not https"
    assert delivery.check_uri("ftp://shop.example/") == "refused: notify_uri is not https"


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_workers_at_once_push_each_notice_once(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    import threading

    from tests.notices.kit import notices_of

    receiver.default = Answer(status=202, delay=0.2)
    for _ in range(6):
        token = tokens_for(ana, vendor, SCOPE)
        ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    workers = [notices_of(app), notices_of(app)]
    threads = [threading.Thread(target=w.push) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w in workers:
        w.close()
    jtis = [verified(vendor.client, r.body.decode())[1]["jti"] for r in receiver.received]
    assert len(jtis) == 6
    assert len(set(jtis)) == 6
    assert {n.state for n in outbox_rows(app)} == {DELIVERED}


def test_the_purge_keeps_a_tombstone_until_its_notice_is_delivered(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    from vrm import purge
    from vrm.dbtypes import utcnow

    receiver.default = Answer(status=500)
    token = tokens_for(ana, vendor, SCOPE)
    ana.client.delete(f"{GRANTS}/{token['grant_id']}")
    run_once(app)
    settings = app.state.settings.model_copy(update={"retain_feed_deletions_seconds": 0})
    later = utcnow() + timedelta(days=2)
    purge.purge(app.state.engine, settings, later)
    assert len(outbox_rows(app)) == 1  # still waiting: kept, tombstone and all
    with Session(app.state.engine) as session:
        session.exec(update(VendorNotice).values(state=DELIVERED))  # type: ignore[call-overload]
        session.commit()
    purge.purge(app.state.engine, settings, later)
    assert outbox_rows(app) == []


def test_a_shortened_grant_tells_the_vendor_its_new_end(
    app: FastAPI, ana: Person, vendor: Vendor, receiver: Receiver
) -> None:
    from datetime import UTC, datetime

    token = tokens_for(ana, vendor, SCOPE)
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    r = ana.client.patch(f"{GRANTS}/{token['grant_id']}", json={"expires_at": soon.isoformat()})
    assert r.status_code == 200, r.text
    run_once(app)
    [got] = receiver.received
    _, claims = verified(vendor.client, got.body.decode())
    event = claims["events"][EVENT]
    assert event["reason"] == "shortened"
    assert event["expires_at"] == int(soon.timestamp())
    assert event["required_action"] == "delete_copies_at_expiry"
    assert "profile.email" in event["fields"]
    [entry] = entries(app, "notice.acknowledged")
    assert entry["reason"] == "shortened"
    # Not a feed item: the expiry's tombstone comes when it is due.
    from tests.vendor_api.helpers import feed_token, read_feed

    items, _ = read_feed(vendor, feed_token(vendor))
    assert [i["type"] for i in items] == ["snapshot"]


def test_a_notice_goes_only_to_its_own_vendor(
    app: FastAPI, ana: Person, vendor: Vendor, other_vendor: Vendor, receiver: Receiver
) -> None:
    """Ana granted two vendors; revoking one tells that one only, and what
    it is told names its own pairwise subject, never the other's."""
    mine = tokens_for(ana, vendor, SCOPE)
    theirs = tokens_for(ana, other_vendor, SCOPE)
    assert ana.client.delete(f"{GRANTS}/{mine['grant_id']}").status_code == 204
    assert run_once(app) == 1
    assert receiver.at("/other") == []
    [got] = receiver.at("/notices")
    _, claims = verified(vendor.client, got.body.decode())
    assert claims["aud"] == vendor.client_id
    [event] = claims["events"].values()
    assert event["grant_id"] == mine["grant_id"]
    other_subject = pairwise_subject(app.state.vault, other_vendor.client_id, ana.id)
    assert claims["sub_id"]["id"] != other_subject
    assert other_subject not in got.body.decode()
    assert theirs["grant_id"] not in got.body.decode()
    # The other vendor's grant lives on: nothing queued for it.
    assert [n.vendor_id for n in outbox_rows(app)] == [vendor.client_id]
