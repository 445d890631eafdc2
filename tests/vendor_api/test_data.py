"""The vendor data API: exactly the granted data, and one access event per read."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from tests.conftest import Person, assert_unhandled_500
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.sqlite_lock import while_locked
from tests.vendor_api.helpers import ME, PROFILE, access_events, add_event, put, read
from vrm.catalogue import CATEGORIES
from vrm.records import service as records
from vrm.settings import Settings
from vrm.storage.groupcommit import GroupCommit
from vrm.vendor_api import accesses

# -- projection ---------------------------------------------------------------


def test_email_grant_returns_the_email_and_no_other_field(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    r = read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body == {
        "subject": body["subject"],
        "grant_id": t["grant_id"],
        "purpose": "dpv:ServiceProvision",
        "profile": {"email": "ana.contact@example.net"},
    }
    # Never the login email nor the internal id.
    assert ana_profile.email not in r.text
    assert ana_profile.id not in r.text
    assert body["subject"] != ana_profile.id


def test_whole_profile_grant_returns_every_profile_field(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")
    r = read(vendor, t["access_token"], "/v1/data/profile")
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {**PROFILE, "birth_date": None}
    assert "preferences" not in r.json()
    assert "history" not in r.json()


def test_preferences_field_grant_returns_that_field_only(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "preferences.dietary:read")
    r = read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["preferences"] == {"dietary": ["vegetarian"]}
    assert set(body) == {"subject", "grant_id", "purpose", "preferences"}


def test_history_never_shares_private_events_or_items_and_keeps_labels(
    ana: Person, vendor: Vendor
) -> None:
    add_event(ana, occurred_at="2024-05-01T10:00:00Z", notes="secret", labels=["private"])
    add_event(
        ana,
        occurred_at="2024-06-01T10:00:00Z",
        labels=["gift"],
        items=[
            {"name": "Atlas", "labels": ["not_for_me"]},
            {"name": "Diary", "labels": ["private"]},
            {"name": "Novel"},
        ],
    )
    event_id = add_event(ana, occurred_at="2024-07-01T10:00:00Z", type="visit")
    t = tokens_for(ana, vendor, "history:read")
    r = read(vendor, t["access_token"], "/v1/data/history")
    assert r.status_code == 200, r.text
    shared = r.json()["history"]
    ids = [e.pop("id") for e in shared]
    assert shared == [
        {
            "vendor": "Bertrand Books",
            "type": "visit",
            "occurred_at": "2024-07-01T10:00:00Z",
            "items": [],
            "labels": [],
        },
        {
            "vendor": "Bertrand Books",
            "type": "purchase",
            "occurred_at": "2024-06-01T10:00:00Z",
            "items": [
                {"name": "Atlas", "quantity": 1, "labels": ["not_for_me"]},
                {"name": "Novel", "quantity": 1, "labels": []},
            ],
            "labels": ["gift"],
        },
    ]
    assert "secret" not in r.text
    assert "Diary" not in r.text
    # Pairwise event ids: ours are not handed out.
    assert event_id not in ids
    assert len(set(ids)) == 2


def test_category_absent_from_the_grant_is_absent_from_the_document(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.given_name:read history:read")
    body = read(vendor, t["access_token"]).json()
    assert body["profile"] == {"given_name": "Ana"}
    assert body["history"] == []
    assert "preferences" not in body


# -- consent changes take effect at once ----------------------------------------


def test_narrowing_the_grant_narrows_the_very_next_read(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read preferences:read")
    assert set(read(vendor, t["access_token"]).json()) >= {"profile", "preferences"}
    r = ana_profile.client.patch(
        f"{ME}/grants/{t['grant_id']}", json={"scopes": ["profile.email:read"]}
    )
    assert r.status_code == 200, r.text
    body = read(vendor, t["access_token"]).json()
    assert body["profile"] == {"email": "ana.contact@example.net"}
    assert "preferences" not in body
    r = read(vendor, t["access_token"], "/v1/data/preferences")
    assert r.status_code == 403, r.text


def test_revoking_the_grant_makes_the_next_read_401(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")
    assert read(vendor, t["access_token"]).status_code == 200
    r = ana_profile.client.delete(f"{ME}/grants/{t['grant_id']}")
    assert r.status_code == 204, r.text
    r = read(vendor, t["access_token"])
    assert_problem(r, 401, "invalid-token")
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm", error="invalid_token"'
    assert "Ana" not in r.text
    assert len(access_events(app, ana_profile.id)) == 1


# -- refusals -------------------------------------------------------------------


def test_category_not_granted_is_403_insufficient_scope(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    r = read(vendor, t["access_token"], "/v1/data/history")
    assert_problem(
        r,
        403,
        "insufficient-scope",
        detail="The grant does not include history.",
        scope="history:read",
    )
    assert r.headers["www-authenticate"] == (
        'Bearer realm="vrm", error="insufficient_scope", scope="history:read"'
    )
    assert access_events(app, ana_profile.id) == []


def test_unknown_category_is_404(ana: Person, vendor: Vendor) -> None:
    t = tokens_for(ana, vendor, "profile.email:read")
    r = read(vendor, t["access_token"], "/v1/data/terms")
    assert_problem(r, 404, "not-found")


@pytest.mark.parametrize("path", ["/v1/data", "/v1/data/profile"])
@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE"])
def test_only_get_reads_and_other_methods_record_nothing(
    app: FastAPI, ana_profile: Person, vendor: Vendor, method: str, path: str
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")
    r = vendor.client.request(method, path, headers=bearer(t["access_token"]))
    assert r.status_code == 405, r.text
    assert "GET" in r.headers["allow"]
    assert access_events(app, ana_profile.id) == []


@pytest.mark.parametrize(
    ("path", "status"),
    # The trailing slash is redirected to /v1/data, not read.
    [("/v1/data/profile/email", 404), ("/v1/datas", 404), ("/v1/data/", 307)],
)
def test_other_paths_read_nothing_and_record_nothing(
    app: FastAPI, ana_profile: Person, vendor: Vendor, path: str, status: int
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")
    r = vendor.client.get(path, headers=bearer(t["access_token"]), follow_redirects=False)
    assert r.status_code == status, r.text
    assert "given_name" not in r.text
    assert access_events(app, ana_profile.id) == []


def test_missing_token_is_401_with_a_bare_challenge(vendor: Vendor) -> None:
    r = vendor.client.get("/v1/data")
    assert_problem(r, 401, "invalid-token")
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm"'


@pytest.mark.parametrize("token", ["vat_forged", "not-a-token", "vrt_refresh-shaped"])
def test_unknown_token_is_401_invalid_token(vendor: Vendor, token: str) -> None:
    r = read(vendor, token)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm", error="invalid_token"'


def test_refresh_token_is_not_an_access_token(ana: Person, vendor: Vendor) -> None:
    t = tokens_for(ana, vendor, "profile.email:read")
    assert read(vendor, t["refresh_token"]).status_code == 401


def test_token_in_the_query_string_is_refused(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    r = vendor.client.get("/v1/data", params={"access_token": t["access_token"]})
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm"'
    assert access_events(app, ana_profile.id) == []


def test_client_credentials_token_is_refused_with_403(vendor: Vendor) -> None:
    # Client credentials carry only feed:read, a scope no data read accepts.
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    r = read(vendor, r.json()["access_token"])
    assert_problem(r, 403, "insufficient-scope")
    assert r.headers["www-authenticate"] == 'Bearer realm="vrm", error="insufficient_scope"'


def test_each_customers_token_returns_only_that_customers_data(
    app: FastAPI, ana_profile: Person, bob: Person, vendor: Vendor
) -> None:
    put(bob, "profile", {"given_name": "Bob", "email": "bob.contact@example.net"})
    ana_t = tokens_for(ana_profile, vendor, "profile:read")
    bob_t = tokens_for(bob, vendor, "profile:read")
    ana_r = read(vendor, ana_t["access_token"])
    bob_r = read(vendor, bob_t["access_token"])
    assert ana_r.json()["profile"]["given_name"] == "Ana"
    assert bob_r.json()["profile"] == {
        "given_name": "Bob",
        "family_name": None,
        "email": "bob.contact@example.net",
        "phone": None,
        "postal_address": None,
        "birth_date": None,
        "language": None,
    }
    # Nothing of Ana's anywhere else in the body: only the profile and
    # what names the read. (Not a search of the text for "Ana": the random
    # base64 subject holds those three letters once in about 6,000 runs.)
    assert set(bob_r.json()) == {"subject", "grant_id", "purpose", "profile"}
    assert bob_r.json()["grant_id"] == bob_t["grant_id"]
    assert ana_r.json()["subject"] != bob_r.json()["subject"]
    assert [e.subject for e in access_events(app, bob.id)] == [bob_r.json()["subject"]]


# -- access events ----------------------------------------------------------------


def test_every_successful_read_records_one_event_naming_the_fields(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read preferences.dietary:read history:read")
    r = read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    r = read(vendor, t["access_token"], "/v1/data/preferences")
    assert r.status_code == 200, r.text
    events = access_events(app, ana_profile.id)
    assert [
        (e.vendor_id, e.grant_id, e.subject, e.purpose, e.categories, e.fields, e.not_modified)
        for e in events
    ] == [
        (
            vendor.client_id,
            t["grant_id"],
            r.json()["subject"],
            "dpv:ServiceProvision",
            ["profile", "preferences", "history"],
            ["profile.email", "preferences.dietary", "history"],
            False,
        ),
        (
            vendor.client_id,
            t["grant_id"],
            r.json()["subject"],
            "dpv:ServiceProvision",
            ["preferences"],
            ["preferences.dietary"],
            False,
        ),
    ]


def _concurrently(app: FastAPI, requests: list[tuple[str, dict[str, str]]]) -> list[Any]:
    """GETs sent at once, all in one event loop, as a busy server sees them."""

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return list(await asyncio.gather(*(c.get(p, headers=h) for p, h in requests)))

    return asyncio.run(run())


def test_reads_at_once_each_record_their_own_event(
    app: FastAPI, ana_profile: Person, bob: Person, vendor: Vendor
) -> None:
    put(bob, "profile", {"given_name": "Bob", "email": "bob.contact@example.net"})
    ana_t = tokens_for(ana_profile, vendor, "profile.email:read")
    bob_t = tokens_for(bob, vendor, "profile:read")
    requests = [("/v1/data", bearer(ana_t["access_token"]))] * 6 + [
        ("/v1/data/profile", bearer(bob_t["access_token"]))
    ] * 5
    answers = _concurrently(app, requests)
    assert [r.status_code for r in answers] == [200] * 11
    assert {r.json()["profile"]["email"] for r in answers[:6]} == {PROFILE["email"]}
    assert {r.json()["profile"]["given_name"] for r in answers[6:]} == {"Bob"}
    ana_events = access_events(app, ana_profile.id)
    bob_events = access_events(app, bob.id)
    assert [(e.grant_id, e.fields) for e in ana_events] == [
        (ana_t["grant_id"], ["profile.email"])
    ] * 6
    assert len(bob_events) == 5
    assert {e.grant_id for e in bob_events} == {bob_t["grant_id"]}
    assert len({e.id for e in ana_events + bob_events}) == 11


def test_a_read_whose_event_cannot_be_written_sends_no_data(
    app: FastAPI, ana_profile: Person, vendor: Vendor, monkeypatch: Any
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read")

    def broken(*_: Any) -> None:
        raise OperationalError("INSERT INTO access_event", None, Exception("disk I/O error"))

    monkeypatch.setattr(accesses, "add_accesses", broken)
    answers = _concurrently(app, [("/v1/data", bearer(t["access_token"]))] * 3)
    for r in answers:
        assert r.status_code == 500, r.text
        assert PROFILE["email"] not in r.text
        assert PROFILE["given_name"] not in r.text
    monkeypatch.undo()
    assert access_events(app, ana_profile.id) == []
    assert read(vendor, t["access_token"]).status_code == 200
    assert len(access_events(app, ana_profile.id)) == 1


def test_an_unexpected_error_in_a_read_is_a_500_problem_that_is_logged(
    app: FastAPI,
    ana_profile: Person,
    vendor: Vendor,
    monkeypatch: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Reads run outside FastAPI's error handling (vrm.app.App): their own
    guard answers as FastAPI's would, and no data goes out."""
    t = tokens_for(ana_profile, vendor, "profile:read")

    def broken(**_: Any) -> None:
        raise RuntimeError("the documents went away")

    monkeypatch.setattr(records, "read_fields_of", broken)
    with caplog.at_level("ERROR", logger="vrm.errors"):
        r = read(vendor, t["access_token"], "/v1/data/profile")
    assert_unhandled_500(r, caplog, "GET", "/v1/data/profile")
    assert "the documents went away" in caplog.text
    assert t["access_token"] not in caplog.text
    assert access_events(app, ana_profile.id) == []


def _sqlite_file(settings: Settings) -> str:
    if not settings.is_sqlite:
        pytest.skip("SQLite's write lock")
    return str(settings.database_url_resolved.removeprefix("sqlite:///"))


def test_a_read_waits_for_another_writer_without_stopping_the_server(
    app: FastAPI, settings: Settings, ana_profile: Person, vendor: Vendor
) -> None:
    """Another process holds SQLite's write lock: the read's answer waits
    for its access event, and meanwhile the server answers other requests."""
    database = _sqlite_file(settings)
    t = tokens_for(ana_profile, vendor, "profile:read")

    # Answered while the read waits: the event loop is not stuck in SQLite's
    # busy handler.
    answer, meanwhile, still_waiting = while_locked(
        app,
        database,
        lambda c: c.get("/v1/data", headers=bearer(t["access_token"])),
        lambda c: c.get("/.well-known/oauth-authorization-server"),
    )
    assert meanwhile.status_code == 200
    assert still_waiting
    assert answer.status_code == 200, answer.text
    assert len(access_events(app, ana_profile.id)) == 1


def test_a_read_that_cannot_get_the_write_lock_in_time_sends_no_data(
    app: FastAPI,
    settings: Settings,
    ana_profile: Person,
    vendor: Vendor,
    monkeypatch: Any,
) -> None:
    database = _sqlite_file(settings)
    t = tokens_for(ana_profile, vendor, "profile:read")
    monkeypatch.setattr(GroupCommit, "GIVE_UP_AFTER", 0.0)
    other = sqlite3.connect(database, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        (r,) = _concurrently(app, [("/v1/data", bearer(t["access_token"]))])
    finally:
        other.rollback()
        other.close()
    assert r.status_code == 500, r.text
    assert PROFILE["email"] not in r.text
    assert access_events(app, ana_profile.id) == []


def test_access_events_hold_no_personal_values(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile:read preferences:read")
    assert read(vendor, t["access_token"]).status_code == 200
    (event,) = access_events(app, ana_profile.id)
    stored = repr(event.model_dump())
    for value in ("Ana", "Silva", "ana.contact", "Augusta", "vegetarian", ana_profile.email):
        assert value not in stored


# -- ETag and 304 -------------------------------------------------------------------


def test_if_none_match_with_the_current_etag_is_304_and_still_recorded(
    app: FastAPI, ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    first = read(vendor, t["access_token"], "/v1/data/profile")
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    again = read(vendor, t["access_token"], "/v1/data/profile", **{"If-None-Match": etag})
    assert again.status_code == 304, again.text
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert [e.not_modified for e in access_events(app, ana_profile.id)] == [False, True]
    assert access_events(app, ana_profile.id)[1].fields == ["profile.email"]


def test_etag_ignores_changes_outside_the_grant_and_follows_changes_inside(
    ana_profile: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    etag = read(vendor, t["access_token"], "/v1/data/profile").headers["etag"]
    put(ana_profile, "profile", {**PROFILE, "given_name": "Ana Maria"})
    r = read(vendor, t["access_token"], "/v1/data/profile", **{"If-None-Match": etag})
    assert r.status_code == 304, r.text
    put(ana_profile, "profile", {**PROFILE, "email": "ana.new@example.net"})
    r = read(vendor, t["access_token"], "/v1/data/profile", **{"If-None-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {"email": "ana.new@example.net"}
    assert r.headers["etag"] != etag
    assert r.headers["cache-control"] == "private, no-cache"


def test_a_read_sees_one_snapshot(
    app: FastAPI, ana_profile: Person, vendor: Vendor, monkeypatch: Any
) -> None:
    """A write that commits between the token check and the data read is
    not in the answer: the grant and the data come from one moment."""
    t = tokens_for(ana_profile, vendor, "profile.email:read")
    original = records.read_fields_of

    def write_first(**kw: Any) -> Any:
        # On a connection of its own, straight through the records service:
        # on SQLite the read runs in the app's event loop, which a request
        # through the test client would need.
        with Session(app.state.engine) as session:
            records.replace_document(
                session=session,
                vault=app.state.vault,
                customer_id=ana_profile.id,
                category="profile",
                data=CATEGORIES["profile"].schema(
                    **{**PROFILE, "email": "changed.meanwhile@example.net"}
                ),
                if_match=None,
            )
        return original(**kw)

    monkeypatch.setattr(records, "read_fields_of", write_first)
    r = read(vendor, t["access_token"])
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == {"email": PROFILE["email"]}
    monkeypatch.setattr(records, "read_fields_of", original)
    assert (
        read(vendor, t["access_token"]).json()["profile"]["email"]
        == "changed.meanwhile@example.net"
    )


def test_access_event_ids_are_random_uuid4_hex() -> None:
    ids = {accesses.new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    for event_id in ids:
        parsed = uuid.UUID(hex=event_id)
        assert (parsed.version, parsed.variant, parsed.hex) == (4, uuid.RFC_4122, event_id)
