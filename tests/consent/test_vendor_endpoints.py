"""The token, revocation and introspection endpoints are served ahead of
FastAPI's routing (consent/oauth/endpoints.py); the app's rules still hold
for them: the body limit, 405 for other methods, form bodies only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from consent.oauth import store, tokens
from consent.vendors import service as vendors
from tests.conftest import Person, assert_unhandled_500
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem
from tests.sqlite_lock import while_locked
from vrm.settings import Settings
from vrm.storage.groupcommit import GroupCommit


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_other_methods_than_post_are_405_problems(vendor: Vendor, path: str) -> None:
    r = vendor.client.get(path, auth=vendor.auth)
    assert_problem(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "POST"


def test_a_token_request_over_the_body_limit_is_a_413_problem(app: FastAPI, vendor: Vendor) -> None:
    limit = app.state.settings.max_body_bytes
    r = vendor.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read", "pad": "x" * limit},
        auth=vendor.auth,
    )
    detail = f"Request bodies are limited to {limit} bytes."
    assert_problem(r, 413, "payload-too-large", detail=detail, instance="/oauth/token")


def test_a_chunked_token_request_is_read_whole(vendor: Vendor) -> None:
    def body() -> Iterator[bytes]:
        yield b"grant_type=client_"
        yield b"credentials&scope=feed%3Aread"

    r = vendor.client.post(
        "/oauth/token",
        content=body(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=vendor.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "feed:read"
    assert r.headers["cache-control"] == "no-store"


def test_a_form_content_type_with_parameters_is_a_form(vendor: Vendor) -> None:
    r = vendor.client.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=feed:read",
        headers={"content-type": "Application/X-WWW-Form-URLEncoded; charset=UTF-8"},
        auth=vendor.auth,
    )
    assert r.status_code == 200, r.text


def test_an_error_from_the_token_endpoint_is_not_cached(vendor: Vendor) -> None:
    r = vendor.client.post(
        "/oauth/token", content=b"{}", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"


def _client_credentials(vendor: Vendor, secret: str | None = None) -> Any:
    return vendor.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read"},
        auth=(vendor.client_id, secret or vendor.client_secret),
    )


def test_a_rotated_secret_stops_working_on_the_next_request(app: FastAPI, vendor: Vendor) -> None:
    assert _client_credentials(vendor).status_code == 200
    with Session(app.state.engine) as session:
        new = vendors.rotate_secret(session, app.state.vault, vendor.client_id)
    r = _client_credentials(vendor)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert _client_credentials(vendor, new).status_code == 200, r.text


def test_a_disabled_vendor_is_refused_and_its_tokens_die_at_once(
    app: FastAPI, vendor: Vendor
) -> None:
    live = _client_credentials(vendor).json()["access_token"]
    with Session(app.state.engine) as session:
        vendors.disable(session, app.state.vault, vendor.client_id)
    r = _client_credentials(vendor)
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    with Session(app.state.engine) as session:
        assert tokens.check_access_token(session.connection(), app.state.vault, live) is None


def test_in_one_event_loop_a_changed_vendor_counts_on_the_next_request(
    app: FastAPI, vendor: Vendor
) -> None:
    # As a server runs: every request in one loop, so in one group commit's
    # connection, which keeps the vendors it read for one group only.
    with TestClient(app) as client:

        def client_credentials(secret: str) -> int:
            return client.post(
                "/oauth/token",
                data={"grant_type": "client_credentials", "scope": "feed:read"},
                auth=(vendor.client_id, secret),
            ).status_code

        assert client_credentials(vendor.client_secret) == 200
        with Session(app.state.engine) as session:
            new = vendors.rotate_secret(session, app.state.vault, vendor.client_id)
        assert client_credentials(vendor.client_secret) == 401
        assert client_credentials(new) == 200
        with Session(app.state.engine) as session:
            vendors.disable(session, app.state.vault, vendor.client_id)
        assert client_credentials(new) == 401


def test_revoking_an_access_token_ends_it_and_the_refresh_token_issued_with_it(
    ana: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor)
    r = vendor.client.post(
        "/oauth/revoke",
        data={"token": token["access_token"], "token_type_hint": "access_token"},
        auth=vendor.auth,
    )
    assert r.status_code == 200, r.text
    assert vendor.introspect(token["access_token"]) == {"active": False}
    # RFC 7009 2.1 allows it, and the two are one row.
    assert vendor.introspect(token["refresh_token"]) == {"active": False}


def test_a_vendor_cannot_introspect_another_vendors_token(
    ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor)
    assert other_vendor.introspect(token["access_token"]) == {"active": False}
    assert vendor.introspect(token["access_token"])["active"] is True


def test_a_new_process_can_answer_a_token_request_first(settings: Settings, vendor: Vendor) -> None:
    # A uvicorn worker's first request may be a token request, before
    # anything in that process has used the ORM.
    script = (
        "from fastapi.testclient import TestClient\n"
        "from vrm.app import create_app\n"
        "from vrm.settings import Settings\n"
        "import sys\n"
        "r = TestClient(create_app(Settings())).post('/oauth/token',"
        " data={'grant_type': 'client_credentials', 'scope': 'feed:read'},"
        " auth=(sys.argv[1], sys.argv[2]))\n"
        "print(r.status_code, r.json().get('token_type'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRM_")}
    env.update(VRM_DATA_DIR=str(settings.data_dir), VRM_DATABASE_URL=settings.database_url)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, vendor.client_id, vendor.client_secret],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.stdout.strip() == "200 Bearer", done.stderr


# -- on SQLite the vendor endpoints are group-committed ------------------------

CC = {"grant_type": "client_credentials", "scope": "feed:read"}


def _at_once(
    app: FastAPI,
    vendor: Vendor,
    forms: list[dict[str, str]],
    auths: list[tuple[str, str]] | None = None,
) -> list[Any]:
    """Token requests sent at once, in one event loop; as ``vendor``, or
    each with its own credentials from ``auths``."""

    async def run() -> list[Any]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            sends = (
                c.post("/oauth/token", data=form, auth=auth)
                for form, auth in zip(forms, auths or [vendor.auth] * len(forms), strict=True)
            )
            return list(await asyncio.gather(*sends))

    return asyncio.run(run())


def _refresh(refresh_token: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


def _active(vendor: Vendor, token: str) -> bool:
    r = vendor.client.post("/oauth/introspect", data={"token": token}, auth=vendor.auth)
    assert r.status_code == 200, r.text
    return bool(r.json()["active"])


def test_tokens_issued_at_once_are_each_stored_before_they_are_sent(
    app: FastAPI, vendor: Vendor
) -> None:
    answers = _at_once(app, vendor, [CC] * 12)
    assert [r.status_code for r in answers] == [200] * 12
    issued = [r.json()["access_token"] for r in answers]
    assert len(set(issued)) == 12
    assert all(_active(vendor, t) for t in issued)
    assert all(r.headers["cache-control"] == "no-store" for r in answers)


def test_vendors_answered_at_once_are_each_authenticated_as_themselves(
    app: FastAPI, vendor: Vendor, other_vendor: Vendor
) -> None:
    # One group reads each vendor once (groupcommit.steady_reads): the
    # second vendor must not be taken for the first, nor the first's secret
    # open the second.
    mixed = (other_vendor.client_id, vendor.client_secret)
    answers = _at_once(app, vendor, [CC] * 3, auths=[vendor.auth, other_vendor.auth, mixed])
    assert [r.status_code for r in answers] == [200, 200, 401]
    mine, theirs = answers[0].json()["access_token"], answers[1].json()["access_token"]
    assert _active(vendor, mine)
    assert not _active(other_vendor, mine)
    assert _active(other_vendor, theirs)
    assert not _active(vendor, theirs)


def test_refreshes_at_once_each_rotate_their_own_family(
    app: FastAPI, vendor: Vendor, ana: Person
) -> None:
    first = [tokens_for(ana, vendor) for _ in range(4)]
    answers = _at_once(app, vendor, [_refresh(t["refresh_token"]) for t in first] + [CC])
    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    for old, r in zip(first, answers, strict=False):
        assert _active(vendor, r.json()["access_token"])
        assert _active(vendor, r.json()["refresh_token"])
        assert not _active(vendor, old["refresh_token"])


def test_a_refresh_token_spent_twice_at_once_revokes_its_family(
    app: FastAPI, vendor: Vendor, ana: Person
) -> None:
    """The second use, in the same group as the first, sees the first one's
    rotation: a replay, which ends every token of the family."""
    t = tokens_for(ana, vendor)
    one, two = sorted(
        _at_once(app, vendor, [_refresh(t["refresh_token"])] * 2), key=lambda r: r.status_code
    )
    assert one.status_code == 200, one.text
    assert two.status_code == 400, two.text
    assert two.json()["error"] == "invalid_grant"
    assert not _active(vendor, one.json()["access_token"])
    assert not _active(vendor, one.json()["refresh_token"])
    assert not _active(vendor, t["access_token"])


def test_a_token_that_cannot_be_stored_is_not_sent(
    app: FastAPI, vendor: Vendor, ana: Person, monkeypatch: Any
) -> None:
    """Nor is the refresh token it would replace used up, and the other
    requests of the group are answered."""
    t = tokens_for(ana, vendor)
    insert_token = store.insert_token

    def broken(*args: Any, **kwargs: Any) -> None:
        if kwargs["refresh_hash"] is not None:  # the refresh's new token only
            raise OperationalError("INSERT INTO oauth_token", None, Exception("disk I/O error"))
        insert_token(*args, **kwargs)

    monkeypatch.setattr(store, "insert_token", broken)
    failed, other = _at_once(app, vendor, [_refresh(t["refresh_token"]), CC])
    assert failed.status_code == 500, failed.text
    assert "access_token" not in failed.text
    assert other.status_code == 200, other.text
    assert _active(vendor, other.json()["access_token"])
    assert _active(vendor, t["refresh_token"])
    monkeypatch.undo()
    (again,) = _at_once(app, vendor, [_refresh(t["refresh_token"])])
    assert again.status_code == 200, again.text
    assert _active(vendor, again.json()["access_token"])


def test_an_unexpected_error_is_a_500_problem_that_is_logged_and_names_no_secret(
    app: FastAPI, vendor: Vendor, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """These endpoints run outside FastAPI's error handling (vrm.app.App):
    their own guard answers as FastAPI's would."""

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the token table went away")

    monkeypatch.setattr(store, "insert_token", broken)
    with caplog.at_level("ERROR", logger="vrm.errors"):
        r = vendor.client.post("/oauth/token", data=CC, auth=vendor.auth)
    assert_unhandled_500(r, caplog, "POST", "/oauth/token")
    assert "the token table went away" in caplog.text
    assert vendor.client_secret not in caplog.text
    monkeypatch.undo()
    assert vendor.client.post("/oauth/token", data=CC, auth=vendor.auth).status_code == 200


def test_a_group_whose_commit_fails_sends_no_token(
    app: FastAPI, settings: Settings, vendor: Vendor, ana: Person, monkeypatch: Any
) -> None:
    t = tokens_for(ana, vendor)

    def broken(*_: Any) -> None:
        raise OperationalError("COMMIT", None, Exception("disk I/O error"))

    monkeypatch.setattr(GroupCommit, "_commit", broken)
    answers = _at_once(app, vendor, [CC, CC, _refresh(t["refresh_token"])])
    for r in answers:
        assert r.status_code == 500, r.text
        assert "access_token" not in r.text
    monkeypatch.undo()
    # Nothing of the group was kept: the refresh token is as it was.
    assert _active(vendor, t["refresh_token"])
    (r,) = _at_once(app, vendor, [_refresh(t["refresh_token"])])
    assert r.status_code == 200, r.text
    assert _active(vendor, r.json()["access_token"])


@pytest.mark.parametrize("grant_type", ["client_credentials", "refresh_token"])
def test_a_token_request_waits_for_another_writer_without_stopping_the_server(
    app: FastAPI, settings: Settings, vendor: Vendor, ana: Person, grant_type: str
) -> None:
    if not settings.is_sqlite:
        pytest.skip("SQLite's write lock")
    database = settings.database_url_resolved.removeprefix("sqlite:///")
    if grant_type == "client_credentials":
        form = CC
    else:
        form = _refresh(tokens_for(ana, vendor)["refresh_token"])

    # Answered meanwhile: the event loop is not stuck in SQLite's busy
    # handler.
    answer, meanwhile, still_waiting = while_locked(
        app,
        database,
        lambda c: c.post("/oauth/token", data=form, auth=vendor.auth),
        lambda c: c.get("/.well-known/oauth-authorization-server"),
    )
    assert meanwhile.status_code == 200
    assert still_waiting
    assert answer.status_code == 200, answer.text
    assert _active(vendor, answer.json()["access_token"])
