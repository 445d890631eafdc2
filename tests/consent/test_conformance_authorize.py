"""The OpenID Foundation's Basic and Config OP checks that apply to a
code-flow-only server and touch the authorization endpoint, replayed twice:
with plain HTTP against the app, and by a certified relying party (the Node
openid-client, tests/consent/node/conformance.mjs, with its own checks of
state, iss, nonce and max_age against auth_time) against ``vrm serve``.
Module names follow the plans (``oidcc-max-age-1``, ``oidcc-prompt-login``,
...).

Login time is moved into the past in the database instead of sleeping: the
``auth_time`` claim and ``max_age`` both read the session's login time. The
Node client, which cannot reach the database, uses ``max_age=0`` (OIDC Core
3.1.2.1: the same as ``prompt=login``)."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlmodel import Session, col, update

from tests.conftest import Person
from tests.consent.conftest import (
    ISSUER,
    Authorization,
    Vendor,
    authorize,
    location_params,
    read_form,
    start,
    tokens_for,
)
from tests.kit import bearer
from tests.liveserver import LiveServer
from tests.nodejs import node_with_packages, options
from vrm.accounts.models import LoginSession
from vrm.dbtypes import utcnow

PROFILE = {"given_name": "Ana", "email": "ana.silva@example.net"}


def _id_token(vendor: Vendor, body: dict[str, Any]) -> dict[str, Any]:
    keys = KeySet.import_key_set(vendor.client.get("/oauth/jwks").json())
    claims: dict[str, Any] = jwt.decode(body["id_token"], keys, algorithms=["ES256"]).claims
    return claims


def _logged_in_ago(app: FastAPI, person: Person, seconds: int) -> int:
    """Move every session of ``person`` back in time; returns the new login
    time as a Unix time."""
    when = utcnow().replace(microsecond=0) - timedelta(seconds=seconds)
    with Session(app.state.engine) as db:
        db.exec(  # type: ignore[call-overload]
            update(LoginSession)
            .where(col(LoginSession.customer_id) == person.id)
            .values(created_at=when)
        )
        db.commit()
    return int(when.timestamp())


def _log_in_from(person: Person, location: str) -> Any:
    """Follow a redirect to the login page, log in there as a browser would,
    and follow the page's redirect back: the answer of the authorization
    endpoint after a fresh login."""
    parts = urlsplit(location)
    assert parts.path == "/login", location
    page = person.client.get(location)
    assert page.status_code == 200, page.text
    form = read_form(page.text)
    r = person.client.post(
        "/login",
        data={**form.hidden, "email": person.email, "password": person.password},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    back = r.headers["location"]
    assert back.startswith("/oauth/authorize?"), back
    return person.client.get(back, follow_redirects=False)


def _code_of(response: Any) -> str:
    assert response.status_code == 303, response.text
    params = location_params(response.headers["location"])
    assert params["iss"] == ISSUER
    return params["code"]


# oidcc-max-age-1 / oidcc-max-age-10000 -----------------------------------------


def test_max_age_shorter_than_the_session_sends_the_customer_to_log_in_again(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "openid profile.email:read")
    _logged_in_ago(app, ana, 20)
    auth = start(ana, vendor, "openid profile.email:read", max_age="5")
    assert auth.page.status_code == 303, auth.page.text
    assert urlsplit(auth.location or "").path == "/login"
    before = int(utcnow().timestamp())
    answer = _log_in_from(ana, auth.location or "")
    r = vendor.exchange(_code_of(answer), auth.verifier)
    assert r.status_code == 200, r.text
    claims = _id_token(vendor, r.json())
    # The fresh login, not the old session nor the time of the code.
    assert before <= claims["auth_time"] <= int(utcnow().timestamp())


def test_max_age_longer_than_the_session_gives_a_code_with_the_login_time(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "openid profile.email:read")
    login_time = _logged_in_ago(app, ana, 20)
    auth = start(ana, vendor, "openid profile.email:read", max_age="10000")
    r = vendor.exchange(_code_of(auth.page), auth.verifier)
    assert r.status_code == 200, r.text
    assert _id_token(vendor, r.json())["auth_time"] == login_time


def test_max_age_that_is_not_a_number_is_an_invalid_request(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, "openid", max_age="five")
    assert auth.page.status_code == 303, auth.page.text
    assert location_params(auth.location or "") == {
        "error": "invalid_request",
        "error_description": "max_age must be a number of seconds",
        "state": auth.params["state"],
        "iss": ISSUER,
    }


def test_max_age_with_prompt_none_and_an_old_login_answers_login_required(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "openid")
    _logged_in_ago(app, ana, 20)
    auth = start(ana, vendor, "openid", max_age="5", prompt="none")
    assert auth.page.status_code == 303, auth.page.text
    assert location_params(auth.location or "") == {
        "error": "login_required",
        "state": auth.params["state"],
        "iss": ISSUER,
    }


# oidcc-prompt-login -----------------------------------------------------------


def test_prompt_login_asks_for_the_password_again_even_with_a_grant(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor, "openid profile.email:read")
    first_login = _id_token(vendor, first)["auth_time"]
    _logged_in_ago(app, ana, 20)
    auth = start(ana, vendor, "openid profile.email:read", prompt="login")
    assert auth.page.status_code == 303, auth.page.text
    assert urlsplit(auth.location or "").path == "/login"
    # Back from the login page the grant covers the request: a code at once,
    # and no second trip to the login page.
    answer = _log_in_from(ana, auth.location or "")
    r = vendor.exchange(_code_of(answer), auth.verifier)
    assert r.status_code == 200, r.text
    assert _id_token(vendor, r.json())["auth_time"] >= first_login


def test_prompt_login_without_a_session_logs_in_once(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    stranger = Person(ana.email, ana.password, TestClient(app), ana.id)
    auth = start(stranger, vendor, "openid", prompt="login")
    answer = _log_in_from(stranger, auth.location or "")
    assert answer.status_code == 200, answer.text
    assert read_form(answer.text).hidden["csrf"]


# oidcc-prompt-none-not-logged-in / oidcc-prompt-none-logged-in -----------------


def test_prompt_none_without_a_session_answers_login_required(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    stranger = Person(ana.email, ana.password, TestClient(app), ana.id)
    auth = start(stranger, vendor, "openid", prompt="none")
    assert auth.page.status_code == 303, auth.page.text
    assert location_params(auth.location or "") == {
        "error": "login_required",
        "state": auth.params["state"],
        "iss": ISSUER,
    }


def test_prompt_none_with_a_session_and_a_grant_gives_a_code_without_a_page(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    authorize(ana, vendor, "openid profile.email:read")
    login_time = _logged_in_ago(app, ana, 60)
    auth = start(ana, vendor, "openid profile.email:read", prompt="none", nonce="n-none")
    r = vendor.exchange(_code_of(auth.page), auth.verifier)
    assert r.status_code == 200, r.text
    claims = _id_token(vendor, r.json())
    assert claims["auth_time"] == login_time
    assert claims["nonce"] == "n-none"


def test_prompt_none_with_a_session_but_no_grant_answers_consent_required(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "openid", prompt="none")
    assert location_params(auth.location or "") == {
        "error": "consent_required",
        "state": auth.params["state"],
        "iss": ISSUER,
    }


# oidcc-id-token-auth-time / oidcc-ensure-request-with-nonce ---------------------


def test_auth_time_is_the_login_not_the_code(app: FastAPI, ana: Person, vendor: Vendor) -> None:
    login_time = _logged_in_ago(app, ana, 600)
    body = tokens_for(ana, vendor, "openid", nonce="n-1")
    claims = _id_token(vendor, body)
    assert claims["auth_time"] == login_time
    assert claims["iat"] >= login_time + 600


def test_the_nonce_comes_back_in_the_id_token_and_is_absent_when_not_sent(
    ana: Person, vendor: Vendor
) -> None:
    with_nonce = _id_token(vendor, tokens_for(ana, vendor, "openid", nonce="n-0S6_WzA2Mj"))
    assert with_nonce["nonce"] == "n-0S6_WzA2Mj"
    without = _id_token(vendor, tokens_for(ana, vendor, "openid"))
    assert "nonce" not in without


# oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported,
# oidcc-request-uri-unsigned ------------------------------------------------------


def _refused(auth: Authorization, error: str, description: str) -> None:
    assert auth.page.status_code == 303, auth.page.text
    assert (auth.location or "").startswith(REDIRECT_PREFIX)
    assert location_params(auth.location or "") == {
        "error": error,
        "error_description": description,
        "state": auth.params["state"],
        "iss": ISSUER,
    }


REDIRECT_PREFIX = "https://shop.example/callback?"
UNSIGNED = "eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9."


def test_a_request_object_is_refused_as_not_supported(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, "openid", request=UNSIGNED)
    _refused(auth, "request_not_supported", "request objects are not supported")


def test_a_request_uri_is_refused_as_not_supported(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, "openid", request_uri="https://shop.example/request.jwt")
    _refused(auth, "request_uri_not_supported", "request_uri is not supported")


def test_a_request_object_without_response_type_is_refused_as_not_supported(
    ana: Person, vendor: Vendor
) -> None:
    # RFC 9101 5: a JAR client sends response_type inside the object only.
    auth = start(ana, vendor, "openid", request=UNSIGNED, response_type=None)  # type: ignore[arg-type]
    _refused(auth, "request_not_supported", "request objects are not supported")
    auth = start(ana, vendor, "openid", request_uri="urn:x", response_type=None)  # type: ignore[arg-type]
    _refused(auth, "request_uri_not_supported", "request_uri is not supported")


def test_a_request_object_with_an_unknown_client_gets_the_error_page(
    ana: Person, vendor: Vendor
) -> None:
    auth = start(ana, vendor, "openid", request=UNSIGNED, client_id="nobody")
    assert auth.page.status_code == 400
    assert "location" not in auth.page.headers


def test_discovery_says_request_objects_are_not_supported(client: TestClient) -> None:
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["request_parameter_supported"] is False
    assert doc["request_uri_parameter_supported"] is False


# scope handling: a narrower request than the grant (RFC 9700 2.3) ----------------


def test_a_narrower_request_gets_only_what_it_asked_for(ana: Person, vendor: Vendor) -> None:
    assert ana.client.put("/api/v1/me/profile", json=PROFILE).status_code == 200
    tokens_for(ana, vendor, "openid profile.email:read history:read")
    auth = start(ana, vendor, "history:read")
    r = vendor.exchange(_code_of(auth.page), auth.verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "history:read"
    assert "id_token" not in body
    assert vendor.introspect(body["access_token"])["scope"] == "history:read"
    info = vendor.client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.status_code == 403, info.text
    assert info.json()["error"] == "insufficient_scope"


def test_a_narrower_request_with_openid_gets_only_the_fields_asked_for(
    ana: Person, vendor: Vendor
) -> None:
    assert ana.client.put("/api/v1/me/profile", json=PROFILE).status_code == 200
    tokens_for(ana, vendor, "openid profile:read history:read")
    auth = start(ana, vendor, "openid profile.email:read")
    r = vendor.exchange(_code_of(auth.page), auth.verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["scope"] == "openid profile.email:read"
    info = vendor.client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert info.json() == {"sub": _id_token(vendor, body)["sub"], "email": PROFILE["email"]}


def test_a_narrower_request_under_authorization_details_gets_only_its_details(
    ana: Person, vendor: Vendor
) -> None:
    wide = [
        {
            "type": "urn:vrm:consent:data-access",
            "datatypes": ["profile"],
            "fields": ["email", "given_name"],
            "actions": ["read"],
            "purpose": "dpv:ServiceProvision",
        }
    ]
    first = tokens_for(ana, vendor, "history:read", authorization_details=json.dumps(wide))
    expires_at = first["authorization_details"][0]["expires_at"]
    auth = start(ana, vendor, "profile.email:read")
    r = vendor.exchange(_code_of(auth.page), auth.verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    only_email = [
        {
            "type": "urn:vrm:consent:data-access",
            "datatypes": ["profile"],
            "actions": ["read"],
            "purpose": "dpv:ServiceProvision",
            "expires_at": expires_at,
            "fields": ["email"],
        }
    ]
    assert body["scope"] == "profile.email:read"
    assert body["authorization_details"] == only_email
    assert vendor.introspect(body["access_token"])["authorization_details"] == only_email


def test_a_refresh_keeps_the_narrower_scope_of_its_code(ana: Person, vendor: Vendor) -> None:
    tokens_for(ana, vendor, "openid profile.email:read history:read")
    auth = start(ana, vendor, "history:read")
    first = vendor.exchange(_code_of(auth.page), auth.verifier).json()
    r = vendor.refresh(first["refresh_token"])
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "history:read"


# -- the same checks by openid-client ------------------------------------------------

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_TIMEOUT = 120


@pytest.fixture(scope="module")
def conformance(shared_live_server: LiveServer) -> dict[str, Any]:
    """One run of conformance.mjs against ``vrm serve`` (its own customer):
    what each check saw, keyed by check."""
    node = node_with_packages(NODE_DIR)
    return _run_conformance(node, shared_live_server)


def _run_conformance(node: str, server: LiveServer) -> dict[str, Any]:
    customer = server.new_customer("conformance")
    vendor = server.vendor
    done = subprocess.run(
        [
            node,
            str(NODE_DIR / "conformance.mjs"),
            *options(
                issuer=server.url,
                client_id=vendor.client_id,
                client_secret=vendor.client_secret,
                redirect_uri=vendor.redirect_uri,
                email=customer.email,
                password=customer.password,
            ),
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"conformance.mjs failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("ok") is True
    assert result.pop("client") == {"openid-client": "6.8.9"}
    return result


SILENT = ["GET /oauth/authorize 303"]


def test_openid_client_reads_that_request_objects_are_not_supported(
    conformance: dict[str, Any],
) -> None:
    assert conformance["discovery"] == {
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
    assert conformance["first"] == {"login": True, "auth_time": "number"}


def test_openid_client_max_age_0_logs_in_again_and_auth_time_passes_its_check(
    conformance: dict[str, Any],
) -> None:
    assert conformance["max_age_0"] == {"login": True, "auth_time_is_new": True}


def test_openid_client_max_age_longer_than_the_login_needs_no_page(
    conformance: dict[str, Any],
) -> None:
    assert conformance["max_age_3600"] == {"trail": SILENT, "auth_time_is_the_login": True}


def test_openid_client_prompt_login_logs_in_again(conformance: dict[str, Any]) -> None:
    assert conformance["prompt_login"] == {"login": True, "auth_time_is_new": True}


def test_openid_client_prompt_none_with_a_session_gets_a_code_and_its_nonce(
    conformance: dict[str, Any],
) -> None:
    assert conformance["prompt_none_logged_in"] == {"trail": SILENT, "nonce_checked": True}


def test_openid_client_prompt_none_without_a_session_gets_login_required(
    conformance: dict[str, Any],
) -> None:
    assert conformance["prompt_none_not_logged_in"] == {
        "error": "login_required",
        "trail": SILENT,
    }


def test_openid_client_narrower_request_gets_only_its_scope(conformance: dict[str, Any]) -> None:
    assert conformance["narrower"] == {
        "trail": SILENT,
        "scope": "history:read",
        "id_token": "undefined",
    }


def test_openid_client_request_objects_are_refused_in_the_authorization_response(
    conformance: dict[str, Any],
) -> None:
    assert conformance["request"] == {"error": "request_not_supported", "trail": SILENT}
    assert conformance["request_uri"] == {"error": "request_uri_not_supported", "trail": SILENT}
