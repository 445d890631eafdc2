"""The token side of an OpenID conformance replica.

The checks of the OpenID Foundation's Basic and Config OP plans that apply
to a code-flow-only server and touch the token, introspection and
revocation endpoints, driven by plain HTTP (the Node openid-client signs in
in test_foreign_clients.py): token endpoint errors (a bad, reused or
expired code, a wrong redirect_uri, a missing verifier, repeated
parameters, an unknown grant type), scope handling (unknown scopes ignored
and the granted scope said, refresh narrowing) and what a bad
``token_type_hint`` or client assertion gets.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Person
from tests.consent.conftest import (
    ISSUER,
    Vendor,
    authorize,
    location_params,
    pkce,
    start,
    tokens_for,
)
from tests.liveserver import Browser, LiveServer, live_server
from tests.nodejs import node_with_packages

NODE_DIR = Path(__file__).resolve().parent / "node"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _post(vendor: Vendor, path: str, body: str, *, auth: bool = True) -> Any:
    """A form posted exactly as written (so a parameter can repeat)."""
    return vendor.client.post(path, content=body, headers=FORM, auth=vendor.auth if auth else None)


def _error(r: Any, status: int, error: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    assert body["error"] == error, body
    assert set(body) <= {"error", "error_description"}, body
    return body


# -- token endpoint errors ------------------------------------------------------


def test_an_unknown_code_is_invalid_grant(vendor: Vendor) -> None:
    r = vendor.token(
        grant_type="authorization_code",
        code="not-a-code",
        redirect_uri=vendor.redirect_uri,
        code_verifier="v" * 43,
    )
    _error(r, 400, "invalid_grant")


def test_a_reused_code_is_invalid_grant_and_revokes_its_tokens(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    first = vendor.exchange(auth.code, auth.verifier)
    assert first.status_code == 200, first.text
    _error(vendor.exchange(auth.code, auth.verifier), 400, "invalid_grant")
    assert vendor.introspect(first.json()["access_token"]) == {"active": False}
    assert vendor.introspect(first.json()["refresh_token"]) == {"active": False}


def test_a_wrong_redirect_uri_is_invalid_grant(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    r = vendor.token(
        grant_type="authorization_code",
        code=auth.code,
        redirect_uri="https://shop.example/other",
        code_verifier=auth.verifier,
    )
    _error(r, 400, "invalid_grant")


def test_a_missing_code_verifier_is_refused(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    r = vendor.token(
        grant_type="authorization_code", code=auth.code, redirect_uri=vendor.redirect_uri
    )
    assert _error(r, 400, "invalid_request") == {
        "error": "invalid_request",
        "error_description": "Missing 'code_verifier'",
    }


def test_a_wrong_code_verifier_is_invalid_grant(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    _error(vendor.exchange(auth.code, "w" * 43), 400, "invalid_grant")


def test_an_unknown_grant_type_is_unsupported_grant_type(vendor: Vendor) -> None:
    for grant_type in ("password", "urn:example:nonsense", "implicit"):
        r = vendor.token(grant_type=grant_type, username="a", password="b")
        _error(r, 400, "unsupported_grant_type")


# -- D17: repeated parameters (RFC 6749 3.1, 3.2) --------------------------------


@pytest.mark.parametrize("name", ["redirect_uri", "grant_type", "code", "code_verifier"])
def test_a_repeated_token_parameter_is_invalid_request_and_spends_nothing(
    ana: Person, vendor: Vendor, name: str
) -> None:
    auth = authorize(ana, vendor)
    params = {
        "grant_type": "authorization_code",
        "code": auth.code,
        "redirect_uri": vendor.redirect_uri,
        "code_verifier": auth.verifier,
    }
    items = [*params.items(), (name, params[name])]
    r = vendor.client.post("/oauth/token", data=dict(_multi(items)), auth=vendor.auth)
    assert _error(r, 400, "invalid_request") == {
        "error": "invalid_request",
        "error_description": f"'{name}' is sent more than once (RFC 6749 3.1)",
    }
    # Refused before anything was looked at: the code still works once.
    assert vendor.exchange(auth.code, auth.verifier).status_code == 200


def _multi(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in items:
        out.setdefault(k, []).append(v)
    return out


def test_two_different_grant_types_are_refused_not_the_first_taken(
    ana: Person, vendor: Vendor
) -> None:
    body = tokens_for(ana, vendor)
    r = _post(
        vendor,
        "/oauth/token",
        f"grant_type=refresh_token&grant_type=client_credentials"
        f"&refresh_token={body['refresh_token']}",
    )
    _error(r, 400, "invalid_request")
    # The refresh token was not used up by the refused request.
    assert vendor.refresh(body["refresh_token"]).status_code == 200


def test_an_empty_repeat_is_an_omitted_parameter_not_a_repeat(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    r = _post(
        vendor,
        "/oauth/token",
        f"grant_type=authorization_code&code={auth.code}&redirect_uri="
        f"&redirect_uri={vendor.redirect_uri}&code_verifier={auth.verifier}",
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ["/oauth/introspect", "/oauth/revoke"])
def test_a_repeated_token_at_introspection_and_revocation_is_invalid_request(
    ana: Person, vendor: Vendor, path: str
) -> None:
    body = tokens_for(ana, vendor)
    r = _post(vendor, path, f"token={body['access_token']}&token={body['refresh_token']}")
    assert _error(r, 400, "invalid_request") == {
        "error": "invalid_request",
        "error_description": "'token' is sent more than once (RFC 6749 3.1)",
    }
    assert vendor.introspect(body["refresh_token"])["active"] is True


# -- D18: token_type_hint is only a hint (RFC 7662 2.1, RFC 7009 2.1) ------------


@pytest.mark.parametrize("hint", ["id_token", "nonsense", "refresh_token"])
def test_introspection_searches_past_an_unknown_or_wrong_hint(
    ana: Person, vendor: Vendor, hint: str
) -> None:
    body = tokens_for(ana, vendor)
    r = vendor.client.post(
        "/oauth/introspect",
        data={"token": body["access_token"], "token_type_hint": hint},
        auth=vendor.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json() == vendor.introspect(body["access_token"])
    assert r.json()["active"] is True


@pytest.mark.parametrize("hint", ["id_token", "nonsense", "access_token"])
def test_revocation_searches_past_an_unknown_or_wrong_hint(
    ana: Person, vendor: Vendor, hint: str
) -> None:
    body = tokens_for(ana, vendor)
    r = vendor.client.post(
        "/oauth/revoke",
        data={"token": body["refresh_token"], "token_type_hint": hint},
        auth=vendor.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {}
    assert vendor.introspect(body["refresh_token"]) == {"active": False}
    assert vendor.introspect(body["access_token"]) == {"active": False}


def test_a_bad_client_is_still_401_whatever_the_hint(ana: Person, vendor: Vendor) -> None:
    body = tokens_for(ana, vendor)
    r = vendor.client.post(
        "/oauth/introspect",
        data={"token": body["access_token"], "token_type_hint": "nonsense"},
        auth=(vendor.client_id, "wrong secret"),
    )
    _error(r, 401, "invalid_client")


# -- D5: client assertions go through the strict JSON parser -----------------------


def _assertion(header: bytes, payload: bytes) -> str:
    return f"{_b64(header)}.{_b64(payload)}.{_b64(b'sig')}"


NESTED = b"[" * 1000 + b"]" * 1000
ALG = b'{"alg":"ES256"}'


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        (ALG, NESTED),
        (NESTED, b'{"sub":"x"}'),
        (ALG, b'{"sub":' + b"[" * 40 + b"]" * 40 + b"}"),
        (ALG, b'{"sub":"x","exp":1e999}'),
        (ALG, b'{"sub":"x","exp":NaN}'),
        (ALG, b'{"sub":"x","exp":' + b"9" * 5000 + b"}"),
        (ALG, b"[1]"),
        (ALG, b"\xff\xfe"),
    ],
    ids=[
        "deep-payload",
        "deep-header",
        "deep-claim",
        "1e999",
        "nan",
        "long-number",
        "array",
        "bad-utf8",
    ],
)
def test_a_hostile_client_assertion_is_invalid_client_not_500(
    vendor: Vendor, header: bytes, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    r = vendor.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "feed:read",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": _assertion(header, payload),
        },
    )
    assert _error(r, 400, "invalid_client") == {
        "error": "invalid_client",
        "error_description": "Invalid JWT assertion.",
    }
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]


def test_a_malformed_assertion_shape_is_invalid_client(vendor: Vendor) -> None:
    for token in ("a.b", "a.b.c.d", "!!!.???.sig", "e30.e30"):
        r = vendor.client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": JWT_BEARER,
                "client_assertion": token,
            },
        )
        assert _error(r, 400, "invalid_client")["error_description"] == "Invalid JWT assertion."


# -- D19: unknown scopes are ignored, and the token says what was granted ----------


def test_unknown_scopes_are_ignored_and_the_token_says_what_was_granted(
    ana: Person, vendor: Vendor
) -> None:
    body = tokens_for(ana, vendor, "profile.email:read offline_access https://api.example/x")
    assert body["scope"] == "profile.email:read"
    assert vendor.introspect(body["access_token"])["scope"] == "profile.email:read"


def test_a_request_of_only_unknown_scopes_is_invalid_scope(ana: Person, vendor: Vendor) -> None:
    auth = start(ana, vendor, scope="offline_access phone_home")
    assert auth.query["error"] == ["invalid_scope"]


def test_standard_oidc_scopes_ask_for_the_profile_fields_they_name(
    ana: Person, vendor: Vendor
) -> None:
    """OIDC Core 5.4: ``profile`` and ``email`` name claims, which are
    fields of our profile; the consent page lists them one by one, and a
    generic client that states no purpose is asking to sign the customer
    in (the default purpose, as for ``openid`` alone)."""
    auth = start(ana, vendor, scope="openid profile email", purpose="")
    assert auth.form is not None, auth.page.text
    assert sorted(auth.form.checkboxes) == [
        "profile.birth_date:read",
        "profile.email:read",
        "profile.family_name:read",
        "profile.given_name:read",
        "profile.language:read",
    ]
    assert "to provide the service you asked for" in auth.page.text


def test_refresh_ignores_unknown_scopes(ana: Person, vendor: Vendor) -> None:
    body = tokens_for(ana, vendor, "profile.email:read preferences:read")
    r = vendor.token(
        grant_type="refresh_token",
        refresh_token=body["refresh_token"],
        scope="preferences:read offline_access",
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "preferences:read"


# -- D9: refresh narrowing (RFC 6749 6) ---------------------------------------------


def _refresh(vendor: Vendor, token: str, scope: str | None = None) -> dict[str, Any]:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    if scope is not None:
        form["scope"] = scope
    r = vendor.token(**form)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_refresh_may_ask_for_one_field_of_a_granted_category(ana: Person, vendor: Vendor) -> None:
    first = tokens_for(ana, vendor, "profile:read preferences:read")
    assert first["scope"] == "preferences:read profile:read"
    narrow = _refresh(vendor, first["refresh_token"], "profile.given_name:read")
    assert narrow["scope"] == "profile.given_name:read"
    assert vendor.introspect(narrow["access_token"])["scope"] == "profile.given_name:read"
    # The new refresh token keeps what the old one could do.
    assert vendor.introspect(narrow["refresh_token"])["scope"] == "preferences:read profile:read"
    again = _refresh(vendor, narrow["refresh_token"])
    assert again["scope"] == "preferences:read profile:read"


def test_a_narrowed_refresh_does_not_shrink_the_next_refresh_token(
    ana: Person, vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor, "profile.email:read preferences:read")
    narrow = _refresh(vendor, first["refresh_token"], "profile.email:read")
    assert narrow["scope"] == "profile.email:read"
    wide_again = _refresh(vendor, narrow["refresh_token"], "preferences:read profile.email:read")
    assert wide_again["scope"] == "preferences:read profile.email:read"


def test_refresh_still_cannot_widen_past_the_refresh_tokens_scope(
    ana: Person, vendor: Vendor
) -> None:
    first = tokens_for(ana, vendor, "profile.email:read")
    for scope in ("profile:read", "profile.email:read history:read", "openid"):
        r = vendor.token(
            grant_type="refresh_token", refresh_token=first["refresh_token"], scope=scope
        )
        _error(r, 400, "invalid_scope")
    # Each refusal left the refresh token unused.
    assert _refresh(vendor, first["refresh_token"])["scope"] == "profile.email:read"


def test_client_credentials_ignore_unknown_scopes_and_refuse_customer_data(
    vendor: Vendor,
) -> None:
    r = vendor.token(grant_type="client_credentials", scope="feed:read offline_access")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "feed:read"
    assert vendor.introspect(r.json()["access_token"])["scope"] == "feed:read"
    for scope in ("feed:read profile.email:read", "feed:read email", "offline_access"):
        wrong = vendor.token(grant_type="client_credentials", scope=scope)
        _error(wrong, 400, "invalid_scope")


# -- a generic OIDC client signs in (Basic OP: scope handling) --------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("live-server")) as live:
        yield live


def _signin(node: str, server: LiveServer, phase: str, *args: str) -> dict[str, Any]:
    vendor = server.vendor
    done = subprocess.run(
        [
            node,
            str(NODE_DIR / "signin.mjs"),
            phase,
            f"--issuer={server.url}",
            f"--client-id={vendor.client_id}",
            f"--client-secret={vendor.client_secret}",
            f"--redirect-uri={vendor.redirect_uri}",
            *args,
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"signin.mjs {phase} failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_openid_client_asking_openid_profile_email_signs_in(server: LiveServer) -> None:
    """OIDC Core 3.1.2.1: the standard scopes a generic client asks for by
    default are not refused; ``profile`` and ``email`` become the profile
    fields they name, the consent page lists them, and the client reads the
    granted claims from UserInfo."""
    node = node_with_packages(NODE_DIR)
    customer = server.new_customer("generic-oidc")
    with httpx.Client(base_url=server.url, timeout=10) as api:
        login = {"email": customer.email, "password": customer.password}
        assert api.post("/api/v1/session", json=login).status_code == 200
        profile = {"given_name": "Ana", "family_name": "Silva", "email": "ana@example.org"}
        put = api.put("/api/v1/me/profile", json=profile)
        assert put.status_code == 200, put.text
    begun = _signin(node, server, "start")
    browser = Browser(server, customer)
    try:
        callback = browser.authorize(begun["url"], untick=("profile.family_name:read",))
    finally:
        browser.close()
    done = _signin(
        node,
        server,
        "finish",
        # --name=value: a random value may start with "-".
        f"--callback={callback}",
        f"--state={begun['state']}",
        f"--nonce={begun['nonce']}",
        f"--verifier={begun['verifier']}",
    )
    assert done == {
        "ok": True,
        "token_type": "bearer",
        # What was granted, which is not what was asked (RFC 6749 5.1).
        "scope": "openid profile.birth_date:read profile.email:read"
        " profile.given_name:read profile.language:read",
        "id_token_claims": [
            "amr",
            "at_hash",
            "aud",
            "auth_time",
            "exp",
            "iat",
            "iss",
            "nonce",
            "sub",
        ],
        "userinfo_sub_matches": True,
        "userinfo": {"given_name": "Ana", "email": "ana@example.org"},
    }


# -- D17 at the authorization endpoint: the same seam ------------------------------


@pytest.mark.parametrize("name", ["max_age", "login_hint", "ui_locales", "claims_locales"])
def test_any_repeated_authorization_parameter_is_invalid_request(
    ana: Person, vendor: Vendor, name: str
) -> None:
    """RFC 6749 3.1 for every parameter, not a list of known ones: the
    request goes back to the client (its redirect_uri is sound) with
    invalid_request, and no code."""
    verifier, challenge = pkce()
    r = ana.client.get(
        "/oauth/authorize",
        params=[
            ("response_type", "code"),
            ("client_id", vendor.client_id),
            ("redirect_uri", vendor.redirect_uri),
            ("scope", "profile.email:read"),
            ("purpose", "dpv:ServiceProvision"),
            ("state", "s1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            (name, "1"),
            (name, "2"),
        ],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert location_params(r.headers["location"]) == {
        "error": "invalid_request",
        "error_description": f"'{name}' is sent more than once (RFC 6749 3.1)",
        "state": "s1",
        "iss": ISSUER,
    }
    del verifier


def test_an_unexpected_error_at_the_token_endpoint_answers_cleanly(
    vendor: Vendor, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The lean endpoint's last word on errors (vrm.app.App): a 500 problem,
    the connection kept (no ``Connection: close``), one error logged."""

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(type(vendor.client.app.state.oauth), "create_token_response", broken)
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 500
    assert r.json() == {
        "type": "about:blank",
        "title": "Internal server error",
        "status": 500,
        "instance": "/oauth/token",
    }
    assert "connection" not in r.headers
    assert [rec.getMessage() for rec in caplog.records if rec.levelname == "ERROR"] == [
        "unhandled error on POST /oauth/token"
    ]


def test_discovery_advertises_the_standard_scopes_it_understands(vendor: Vendor) -> None:
    doc = vendor.client.get("/.well-known/openid-configuration").json()
    scopes = doc["scopes_supported"]
    assert [s for s in scopes if ":" not in s] == ["openid", "profile", "email", "phone", "address"]
    assert "profile.given_name:read" in scopes
