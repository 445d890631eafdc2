"""A NUL character names nothing and is stored nowhere: PostgreSQL text
cannot hold one (psycopg refuses the statement), so a NUL that reached a
query answered 500 there while SQLite answered 404. Refused in front of
every route, lean or not (vrm.middleware.BodyLimitMiddleware), on both
databases alike."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from consent.vendors import service as registration
from tests.conftest import Person
from tests.consent.conftest import Vendor
from tests.kit import assert_problem


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/me/grants/a\x00b",
        "/api/v1/me/history/a\x00b",
        "/v1/data/pro\x00file",
    ],
)
def test_a_nul_in_the_path_is_a_404(ana: Person, path: str) -> None:
    r = ana.client.get(path.replace("\x00", "%00"))
    assert_problem(r, 404, "not-found", detail="No such resource.", instance=path)


@pytest.mark.parametrize(
    ("path", "param"),
    [("/api/v1/me/history", "vendor"), ("/api/v1/me/history", "cursor"), ("/v1/feed", "cursor")],
)
def test_a_nul_in_the_query_is_a_422(ana: Person, path: str, param: str) -> None:
    r = ana.client.get(path + f"?{param}=a%00b")
    assert_problem(
        r,
        422,
        "validation",
        detail="query: a query cannot hold a NUL character",
        instance=path,
        errors=[
            {"field": "query", "message": "a query cannot hold a NUL character", "code": "nul"}
        ],
    )


def test_a_nul_in_an_oauth_form_is_an_oauth_error(vendor: Vendor) -> None:
    r = vendor.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read", "client_id": "a\x00b"},
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"


def test_a_nul_in_registration_metadata_is_refused(app: FastAPI) -> None:
    with Session(app.state.engine) as session:
        token = registration.issue_initial_access_token(
            session, app.state.vault, label="Lello onboarding", ttl=timedelta(days=1)
        )
    with TestClient(app) as client:
        r = client.post(
            "/oauth/register",
            json={
                "client_name": "Lel\x00lo",
                "redirect_uris": ["https://lello.example/cb"],
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_client_metadata"


def test_a_nul_in_the_client_id_at_authorize_is_an_unknown_client(
    ana: Person, vendor: Vendor
) -> None:
    # The error page, never a redirect (RFC 6749 4.1.2.1), exactly as for a
    # client id that names nobody; it was a 500 on PostgreSQL.
    params = {
        "response_type": "code",
        "redirect_uri": vendor.redirect_uri,
        "scope": "profile.email:read",
        "state": "s",
    }
    nul = vendor.client_id[:3] + "\x00" + vendor.client_id[3:]
    answers = [
        ana.client.get(
            "/oauth/authorize", params={**params, "client_id": c}, follow_redirects=False
        )
        for c in (nul, "vnd_nobody")
    ]
    assert [r.status_code for r in answers] == [400, 400]
    assert "location" not in answers[0].headers
    # The same page, but for its CSP nonce, fresh in each answer.
    same = [re.sub(r'nonce="[^"]+"', 'nonce=""', r.text) for r in answers]
    assert same[0] == same[1]
