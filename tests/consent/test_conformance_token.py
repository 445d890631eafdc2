"""The token side of an OpenID conformance replica: endpoint errors.

The checks of the OpenID Foundation's Basic and Config OP plans that apply
to a code-flow-only server and touch the token, introspection and
revocation endpoints, driven by plain HTTP: a bad, reused or wrongly bound
code, a missing or wrong verifier, an unknown grant type, repeated
parameters (RFC 6749 3.1), what a bad ``token_type_hint`` or client
assertion gets, and an unexpected error. Scope handling (unknown scopes,
refresh narrowing, a generic openid-client signing in) is in
test_conformance_scopes.py.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import UNEXPECTED, Person
from tests.consent.conftest import (
    ISSUER,
    Vendor,
    authorize,
    location_params,
    pkce,
    tokens_for,
)
from tests.kit import assert_problem

FORM = {"content-type": "application/x-www-form-urlencoded"}
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _post(vendor: Vendor, path: str, body: str, *, auth: bool = True) -> Any:
    """A form posted exactly as written (so a parameter can repeat)."""
    return vendor.client.post(path, content=body, headers=FORM, auth=vendor.auth if auth else None)


def oauth_error(r: Any, status: int, error: str) -> dict[str, Any]:
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
    oauth_error(r, 400, "invalid_grant")


def test_a_reused_code_is_invalid_grant_and_revokes_its_tokens(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    first = vendor.exchange(auth.code, auth.verifier)
    assert first.status_code == 200, first.text
    oauth_error(vendor.exchange(auth.code, auth.verifier), 400, "invalid_grant")
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
    oauth_error(r, 400, "invalid_grant")


def test_a_missing_code_verifier_is_refused(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    r = vendor.token(
        grant_type="authorization_code", code=auth.code, redirect_uri=vendor.redirect_uri
    )
    assert oauth_error(r, 400, "invalid_request") == {
        "error": "invalid_request",
        "error_description": "Missing 'code_verifier'",
    }


def test_a_wrong_code_verifier_is_invalid_grant(ana: Person, vendor: Vendor) -> None:
    auth = authorize(ana, vendor)
    oauth_error(vendor.exchange(auth.code, "w" * 43), 400, "invalid_grant")


def test_an_unknown_grant_type_is_unsupported_grant_type(vendor: Vendor) -> None:
    for grant_type in ("password", "urn:example:nonsense", "implicit"):
        r = vendor.token(grant_type=grant_type, username="a", password="b")
        oauth_error(r, 400, "unsupported_grant_type")


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
    assert oauth_error(r, 400, "invalid_request") == {
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
    oauth_error(r, 400, "invalid_request")
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
    assert oauth_error(r, 400, "invalid_request") == {
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
    oauth_error(r, 401, "invalid_client")


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
    assert oauth_error(r, 400, "invalid_client") == {
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
        assert (
            oauth_error(r, 400, "invalid_client")["error_description"] == "Invalid JWT assertion."
        )


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
    assert_problem(r, 500, "internal", detail=UNEXPECTED, instance="/oauth/token")
    assert "connection" not in r.headers
    assert [rec.getMessage() for rec in caplog.records if rec.levelname == "ERROR"] == [
        "unhandled error on POST /oauth/token"
    ]
