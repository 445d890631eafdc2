"""The RFC 9700 / OAuth 2.1 checklist (shared OAUTH.md), item by item: each
test tries to break one rule. Numbers refer to the checklist."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, update

from consent.oauth.models import AuthorizationCode, OAuthToken
from tests.conftest import Person
from tests.consent.conftest import (
    ISSUER,
    Vendor,
    authorize,
    decide,
    location_params,
    pkce,
    start,
    tokens_for,
)
from tests.kit import bearer
from vrm.dbtypes import utcnow


def _bounced(auth_page: object, vendor: Vendor) -> dict[str, str]:
    r = auth_page
    assert r.status_code == 303, r.text  # type: ignore[attr-defined]
    location = r.headers["location"]  # type: ignore[attr-defined]
    assert location.startswith(vendor.redirect_uri + "?")
    params = location_params(location)
    assert params["iss"] == ISSUER  # 9: iss on errors too
    return params


def _not_redirected(r: object) -> None:
    assert r.status_code == 400  # type: ignore[attr-defined]
    assert "location" not in r.headers  # type: ignore[attr-defined]
    assert r.headers["content-type"].startswith("text/html")  # type: ignore[attr-defined]


# 1, 2 -------------------------------------------------------------------------


def test_01_implicit_response_type_is_refused_with_a_redirect_carrying_iss(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, response_type="token")
    params = _bounced(auth.page, vendor)
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == auth.params["state"]
    assert "access_token" not in params


def test_02_password_grant_does_not_exist(vendor: Vendor, ana: Person) -> None:
    r = vendor.token(grant_type="password", username=ana.email, password=ana.password)
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"


# 3, 4, 5: PKCE -----------------------------------------------------------------


def test_03_a_request_without_code_challenge_is_refused(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, code_challenge="", code_challenge_method="")
    params = _bounced(auth.page, vendor)
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


@pytest.mark.parametrize("method", ["plain", "", "s256"])
def test_04_only_s256_is_accepted(ana: Person, vendor: Vendor, method: str) -> None:
    auth = start(ana, vendor, code_challenge_method=method)
    assert _bounced(auth.page, vendor)["error"] == "invalid_request"


def test_05_a_wrong_or_missing_code_verifier_gets_no_token(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    other_verifier, _ = pkce()
    r = vendor.exchange(auth.code, other_verifier)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    auth = authorize(ana, vendor, prompt="consent")
    r = vendor.token(
        grant_type="authorization_code", code=auth.code, redirect_uri=vendor.redirect_uri
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


# 6, 7, 8: redirect URIs ----------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://shop.example/callback/",
        "https://shop.example/callback/../evil",
        "https://SHOP.example/callback",
        "https://shop.example/callback?x=1",
        "https://shop.example/callback#frag",
        "http://shop.example/callback",
        "https://evil.example/callback",
    ],
)
def test_06_redirect_uri_must_match_exactly_and_a_mismatch_never_redirects(
    ana: Person, vendor: Vendor, uri: str
) -> None:
    auth = start(ana, vendor, redirect_uri=uri)
    _not_redirected(auth.page)


def test_07_unknown_client_gets_an_error_page_not_a_redirect(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, client_id="vnd_nobody")
    _not_redirected(auth.page)


def test_08_errors_do_not_bounce_to_the_client_before_the_customer_logs_in(
    app: FastAPI, vendor: Vendor
) -> None:
    from fastapi.testclient import TestClient

    stranger = Person("x@example.org", "-", TestClient(app), "-")
    auth = start(stranger, vendor, scope="profile.nonsense:read")
    assert auth.page.status_code == 303
    assert urlsplit(auth.page.headers["location"]).path == "/login"


def test_08_unknown_scope_after_login_is_an_invalid_scope_redirect(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, scope="profile.nonsense:read")
    assert _bounced(auth.page, vendor)["error"] == "invalid_scope"


# 10, 11: codes -----------------------------------------------------------------


def test_10_a_code_works_once(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    assert vendor.exchange(auth.code, auth.verifier).status_code == 200
    again = vendor.exchange(auth.code, auth.verifier)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_10_an_expired_code_is_refused(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    with Session(app.state.engine) as session:
        session.exec(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1)))  # type: ignore[call-overload]
        session.commit()
    r = vendor.exchange(auth.code, auth.verifier)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def test_10_a_code_is_bound_to_its_client(
    ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    auth = authorize(ana, vendor)
    r = other_vendor.exchange(auth.code, auth.verifier)
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    # The failed attempt by another client did not burn the code.
    assert vendor.exchange(auth.code, auth.verifier).status_code == 200


def test_10_a_code_is_bound_to_its_redirect_uri(app: FastAPI, ana: Person) -> None:
    vendor_two = _two_uri_vendor(app)
    auth = authorize(ana, vendor_two)
    r = vendor_two.token(
        grant_type="authorization_code",
        code=auth.code,
        redirect_uri="https://shop.example/other",
        code_verifier=auth.verifier,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"


def _two_uri_vendor(app: FastAPI) -> Vendor:
    from fastapi.testclient import TestClient

    from consent.vendors import service as vendors

    with Session(app.state.engine) as session:
        v, secret = vendors.register(
            session,
            app.state.vault,
            name="Two Doors",
            redirect_uris=["https://shop.example/callback", "https://shop.example/other"],
        )
    assert secret is not None
    return Vendor(v.id, secret, "https://shop.example/callback", TestClient(app))


def test_11_reusing_a_code_revokes_the_tokens_it_gave(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    first = vendor.exchange(auth.code, auth.verifier).json()
    assert vendor.introspect(first["access_token"])["active"] is True
    assert vendor.exchange(auth.code, auth.verifier).status_code == 400
    assert vendor.introspect(first["access_token"]) == {"active": False}
    assert vendor.introspect(first["refresh_token"]) == {"active": False}
    assert vendor.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


# 12, 13: refresh tokens -----------------------------------------------------------


def test_12_refresh_tokens_rotate_and_a_replay_kills_the_family(
    ana: Person, vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor)
    second = vendor.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert second_body["scope"] == first["scope"]
    third = vendor.refresh(second_body["refresh_token"]).json()
    # Replay the first, already rotated, refresh token.
    replay = vendor.refresh(first["refresh_token"])
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Every token of the family is now dead, the newest included.
    assert vendor.introspect(third["access_token"]) == {"active": False}
    assert vendor.refresh(third["refresh_token"]).json()["error"] == "invalid_grant"


def test_12_a_refresh_token_is_bound_to_its_client(
    ana: Person, vendor: Vendor, other_vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor)
    assert other_vendor.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"
    # Another client's attempt is not a replay: the owner can still refresh.
    assert vendor.refresh(first["refresh_token"]).status_code == 200


def test_12_refresh_cannot_widen_the_scope(ana: Person, vendor: Vendor) -> None:
    first = tokens_for(ana, vendor, "profile.email:read")
    r = vendor.token(
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        scope="profile.email:read history:read",
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


def test_13_an_idle_refresh_token_expires(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    first = tokens_for(ana, vendor)
    with Session(app.state.engine) as session:
        session.exec(update(OAuthToken).values(refresh_expires_at=utcnow() - timedelta(seconds=1)))  # type: ignore[call-overload]
        session.commit()
    assert vendor.refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


def test_13_no_token_outlives_its_grant(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, "profile.email:read")
    decide(ana, auth, duration_days="1")
    body = vendor.exchange(auth.code, auth.verifier).json()
    with Session(app.state.engine) as session:
        row = session.exec(select_token()).first()
        assert row is not None
        assert row.refresh_expires_at is not None
        assert row.refresh_expires_at <= utcnow() + timedelta(days=1)
    assert body["expires_in"] <= 600


def select_token():  # type: ignore[no-untyped-def]
    from sqlmodel import select

    return select(OAuthToken).where(col(OAuthToken.refresh_hash).is_not(None))


# 17, 18, 19: token endpoint ---------------------------------------------------------


def test_17_token_responses_are_not_cached(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    r = vendor.exchange(auth.code, auth.verifier)
    assert r.headers["cache-control"] == "no-store"
    bad = vendor.token(grant_type="authorization_code", code="nope")
    assert bad.headers["cache-control"] == "no-store"


def test_18_token_parameters_in_the_query_string_are_ignored(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    r = vendor.client.post(
        "/oauth/token",
        params={
            "grant_type": "authorization_code",
            "code": auth.code,
            "redirect_uri": vendor.redirect_uri,
            "code_verifier": auth.verifier,
        },
        data={"unused": "x"},
        auth=vendor.auth,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    # The code was not consumed by that attempt.
    assert vendor.exchange(auth.code, auth.verifier).status_code == 200


def test_18_duplicate_authorization_parameters_are_refused(ana: Person, vendor: Vendor) -> None:
    verifier, challenge = pkce()
    r = ana.client.get(
        "/oauth/authorize",
        params=[
            ("response_type", "code"),
            ("client_id", vendor.client_id),
            ("redirect_uri", vendor.redirect_uri),
            ("scope", "profile.email:read"),
            ("purpose", "dpv:ServiceProvision"),
            ("code_challenge", challenge),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
        follow_redirects=False,
    )
    assert _bounced(r, vendor)["error"] == "invalid_request"
    del verifier


def test_18_token_endpoint_wants_a_form_body(vendor: Vendor) -> None:
    r = vendor.client.post(
        "/oauth/token", json={"grant_type": "client_credentials"}, auth=vendor.auth
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


def test_19_a_wrong_client_secret_is_a_401_with_www_authenticate(vendor: Vendor) -> None:
    r = vendor.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read"},
        auth=(vendor.client_id, vendor.client_secret + "x"),
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    assert vendor.client_secret not in r.text


def test_19_a_client_must_authenticate(vendor: Vendor, ana: Person) -> None:
    auth = authorize(ana, vendor)
    r = vendor.client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": auth.code,
            "client_id": vendor.client_id,
            "redirect_uri": vendor.redirect_uri,
            "code_verifier": auth.verifier,
        },
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic "), r.headers


def test_19_client_secret_post_is_accepted(vendor: Vendor) -> None:
    r = vendor.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "feed:read",
            "client_id": vendor.client_id,
            "client_secret": vendor.client_secret,
        },
    )
    assert r.status_code == 200, r.text
    assert "refresh_token" not in r.json()


# 21, 22, 23, 25: pages ---------------------------------------------------------------


def test_21_25_consent_and_login_pages_refuse_frames_and_referrers(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor)
    login = ana.client.get("/login")
    for page in (auth.page, login):
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"


def test_22_no_cors_on_the_authorization_endpoint(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor)
    r = ana.client.options(
        "/oauth/authorize",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-origin" not in auth.page.headers


def test_23_consent_answers_with_303(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor)
    decide(ana, auth)
    assert auth.page.status_code == 303


# 26: metadata ----------------------------------------------------------------------


def test_26_metadata_says_what_the_server_enforces(client: object) -> None:
    r = client.get("/.well-known/oauth-authorization-server")  # type: ignore[attr-defined]
    assert r.status_code == 200
    doc = r.json()
    assert doc["issuer"] == ISSUER
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["response_types_supported"] == ["code"]
    assert "password" not in doc["grant_types_supported"]
    assert "implicit" not in doc["grant_types_supported"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["token_endpoint"] == ISSUER + "/oauth/token"
    assert doc["registration_endpoint"] == ISSUER + "/oauth/register"
    assert "profile.email:read" in doc["scopes_supported"]


def test_12_a_refused_wider_refresh_does_not_use_up_the_refresh_token(
    ana: Person, vendor: Vendor
) -> None:
    # Found by Authlib's client, which sends its configured scope on every
    # refresh: the refusal must not count as a use, or the retry would look
    # like a replay and kill the family.
    first = tokens_for(ana, vendor, "profile.email:read")
    wide = vendor.token(
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        scope="profile.email:read preferences:read",
    )
    assert wide.json()["error"] == "invalid_scope"
    retry = vendor.refresh(first["refresh_token"])
    assert retry.status_code == 200, retry.text
    assert vendor.introspect(retry.json()["access_token"])["active"] is True


# 27: TLS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "issuer", ["http://vrm.example", "http://10.0.0.5:8000", "ftp://vrm.example", "vrm.example"]
)
def test_27_the_server_refuses_to_start_with_a_plain_http_issuer(issuer: str) -> None:
    from pydantic import ValidationError

    from vrm.settings import Settings

    with pytest.raises(ValidationError, match="VRM_ISSUER"):
        Settings(issuer=issuer)


@pytest.mark.parametrize(
    "issuer", ["https://vrm.example", "http://127.0.0.1:8000", "http://localhost:9000"]
)
def test_27_https_or_loopback_issuers_are_accepted(issuer: str) -> None:
    from vrm.settings import Settings

    assert Settings(issuer=issuer).issuer == issuer


def test_27_vrm_serve_says_why_it_will_not_start(tmp_path: object) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    vrm = Path(sys.executable).with_name("vrm")
    env = {**os.environ, "VRM_DATA_DIR": str(tmp_path), "VRM_ISSUER": "http://vrm.example"}
    r = subprocess.run([str(vrm), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "VRM_ISSUER must be https" in lines[0]


# 28: constant challenges -------------------------------------------------------------


def test_28_a_code_challenge_used_before_is_refused(ana: Person, vendor: Vendor) -> None:
    first = authorize(ana, vendor)
    again = start(
        ana,
        vendor,
        prompt="consent",
        code_challenge=first.params["code_challenge"],
    )
    assert _bounced(again.page, vendor)["error"] == "invalid_request"
    assert "code_challenge" in location_params(again.page.headers["location"])["error_description"]
    # A fresh challenge works.
    assert start(ana, vendor, prompt="consent").page.status_code == 200


def test_12_two_refreshes_racing_with_one_token_get_one_answer_then_the_family_dies(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    import threading

    from fastapi.testclient import TestClient

    first = tokens_for(ana, vendor)
    barrier = threading.Barrier(4)
    answers: list[object] = []

    def refresh() -> None:
        # Not as a context manager: that would run the app's lifespan, whose
        # end disposes the engine under the other threads' feet.
        c = TestClient(app)
        barrier.wait()
        r = c.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
            auth=vendor.auth,
        )
        answers.append(r)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in answers if r.status_code == 200]  # type: ignore[attr-defined]
    refused = [r for r in answers if r.status_code == 400]  # type: ignore[attr-defined]
    assert len(ok) == 1, [r.text for r in answers]  # type: ignore[attr-defined]
    assert len(refused) == 3
    assert all(r.json()["error"] == "invalid_grant" for r in refused)  # type: ignore[attr-defined]
    # The losers look like replays, so the winner's tokens are revoked too.
    winner = ok[0].json()  # type: ignore[attr-defined]
    assert vendor.introspect(winner["access_token"]) == {"active": False}


def test_19_a_client_credentials_token_introspects_with_its_vendor_scope(
    vendor: Vendor,
) -> None:
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    info = vendor.introspect(token)
    assert info["active"] is True
    assert info["scope"] == "feed:read"
    assert "sub" not in info
    # It names no customer: userinfo refuses it (and does not fail).
    u = vendor.client.get("/oauth/userinfo", headers=bearer(token))
    assert u.status_code == 401
    assert 'error="invalid_token"' in u.headers["www-authenticate"]
