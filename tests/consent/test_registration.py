"""Dynamic client registration (RFC 7591) and its management (RFC 7592).

Registration needs an operator-issued initial access token; the registration
then answers only to its own registration access token. Every test runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import Session

from consent.oauth import tokens
from consent.vendors import service
from consent.vendors.models import InitialAccessToken
from consent.vendors.models import Vendor as VendorRow
from tests.conftest import Person
from tests.consent.conftest import ISSUER, REDIRECT_URI, Vendor, tokens_for
from tests.kit import assert_problem, bearer

REGISTER = "/oauth/register"
METADATA: dict[str, Any] = {
    "client_name": "Livraria Lello",
    "redirect_uris": [REDIRECT_URI],
    "policy_uri": "https://shop.example/privacy",
    "logo_uri": "https://shop.example/logo.png",
    "contacts": ["dpo@shop.example"],
    "notify_uri": "https://shop.example/vrm/events",
}
BEARER = 'Bearer realm="vrm"'
INVALID_TOKEN = 'Bearer realm="vrm", error="invalid_token"'
HTTPS_ONLY = "must use https (http only on a loopback host)"


@pytest.fixture
def web(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def initial_token(app: FastAPI) -> str:
    with Session(app.state.engine) as session:
        return service.issue_initial_access_token(
            session, app.state.vault, label="Lello onboarding", ttl=timedelta(days=1)
        )


def _register(web: TestClient, token: str, body: Any = None, **overrides: Any) -> httpx.Response:
    payload = METADATA | overrides if body is None else body
    return web.post(REGISTER, json=payload, headers=bearer(token))


def _registered(web: TestClient, token: str, **overrides: Any) -> dict[str, Any]:
    r = _register(web, token, **overrides)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _path(registration: dict[str, Any]) -> str:
    uri: str = registration["registration_client_uri"]
    assert uri.startswith(ISSUER)
    return uri.removeprefix(ISSUER)


def _manage(registration: dict[str, Any]) -> dict[str, str]:
    return bearer(registration["registration_access_token"])


def _stored(app: FastAPI, client_id: str) -> VendorRow:
    with Session(app.state.engine) as fresh:
        row = fresh.get(VendorRow, client_id)
    assert row is not None
    return row


def _as_vendor(app: FastAPI, registration: dict[str, Any]) -> Vendor:
    """The helpers' Vendor, built from what the registration returned."""
    return Vendor(
        registration["client_id"],
        registration["client_secret"],
        registration["redirect_uris"][0],
        TestClient(app),
    )


def _oauth_error(r: httpx.Response, status: int, error: str, description: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {"error": error, "error_description": description}


def _unauthorized(r: httpx.Response, challenge: str, detail: str | None = None) -> None:
    """401 with ``challenge``; a token that was sent is named invalid in the
    body too, in RFC 6750's terms (consent/registration/bearer.py)."""
    assert r.headers.get("www-authenticate") == challenge, r.text
    if challenge == BEARER:
        assert_problem(r, 401, "unauthenticated", detail=detail)
    else:
        body = assert_problem(
            r, 401, "unauthenticated", detail=detail, error="invalid_token", error_description=ANY
        )
        assert body["error_description"] == body["detail"]


def _set_initial_token(app: FastAPI, token: str, **values: Any) -> None:
    with Session(app.state.engine) as fresh:
        row = fresh.get(InitialAccessToken, app.state.vault.token_hash(token))
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        fresh.add(row)
        fresh.commit()


# -- registration ------------------------------------------------------------


def test_registration_returns_server_chosen_credentials_and_the_accepted_metadata(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    before = int(time.time())
    r = _register(web, initial_token)

    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    client_id = body["client_id"]
    assert client_id.startswith("vnd_")
    assert before - 1 <= body["client_id_issued_at"] <= time.time()
    assert len(body["client_secret"]) >= 43
    assert len(body["registration_access_token"]) >= 43
    assert body["client_secret"] != body["registration_access_token"]
    assert body == {
        "client_id": client_id,
        "client_secret": body["client_secret"],
        "client_id_issued_at": body["client_id_issued_at"],
        "client_secret_expires_at": 0,
        "registration_access_token": body["registration_access_token"],
        "registration_client_uri": f"{ISSUER}/oauth/register/{client_id}",
        "client_name": "Livraria Lello",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "logo_uri": "https://shop.example/logo.png",
        "policy_uri": "https://shop.example/privacy",
        "contacts": ["dpo@shop.example"],
        "notify_uri": "https://shop.example/vrm/events",
    }


def test_a_registered_vendor_is_stored_as_dynamic_with_only_hashes_of_its_secrets(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    body = _registered(web, initial_token)

    row = _stored(app, body["client_id"])
    vault = app.state.vault
    assert row.registered_by == "dynamic"
    assert row.secret_hash == vault.token_hash(body["client_secret"])
    assert row.registration_token_hash == vault.token_hash(body["registration_access_token"])
    assert row.disabled_at is None
    assert (row.name, row.redirect_uris, row.notify_uri) == (
        "Livraria Lello",
        [REDIRECT_URI],
        "https://shop.example/vrm/events",
    )


def test_a_registered_vendor_runs_the_authorization_code_flow(
    app: FastAPI, web: TestClient, initial_token: str, ana: Person
) -> None:
    vendor = _as_vendor(app, _registered(web, initial_token))

    body = tokens_for(ana, vendor, "openid profile.email:read")

    assert body["scope"] == "openid profile.email:read"
    assert "refresh_token" not in body  # only authorization_code was registered
    r = vendor.client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert r.status_code == 200, r.text
    assert vendor.introspect(body["access_token"])["active"] is True


def test_an_initial_access_token_registers_more_than_one_vendor(
    web: TestClient, initial_token: str
) -> None:
    first = _registered(web, initial_token)
    second = _registered(web, initial_token)

    assert first["client_id"] != second["client_id"]
    assert first["client_secret"] != second["client_secret"]


def test_client_id_and_client_secret_in_the_request_are_ignored(
    app: FastAPI, web: TestClient, initial_token: str, vendor: Vendor
) -> None:
    # A client may not pick its id (RFC 9700 4.15), least of all an existing one.
    body = _registered(
        web, initial_token, client_id=vendor.client_id, client_secret="chosen-by-the-client"
    )

    assert body["client_id"] not in (vendor.client_id, "chosen-by-the-client")
    assert body["client_secret"] != "chosen-by-the-client"
    assert _stored(app, vendor.client_id).name == "Bertrand Books"


def test_unknown_and_unused_members_are_ignored_and_not_echoed(
    web: TestClient, initial_token: str
) -> None:
    body = _registered(
        web,
        initial_token,
        client_uri="https://shop.example",
        tos_uri="https://shop.example/tos",
        scope="profile:read",
        software_id="4NRB1-0XZABZI9E6-5SM3R",
        software_statement="eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        favourite_colour="green",
        logo_uri=None,
    )

    for member in ("client_uri", "tos_uri", "scope", "software_id", "favourite_colour"):
        assert member not in body
    assert "logo_uri" not in body  # null counts as left out


def test_an_http_redirect_uri_on_loopback_is_accepted(web: TestClient, initial_token: str) -> None:
    body = _registered(web, initial_token, redirect_uris=["http://127.0.0.1:8765/callback"])

    assert body["redirect_uris"] == ["http://127.0.0.1:8765/callback"]


def test_a_private_key_jwt_vendor_gets_no_secret_and_authenticates_with_its_key(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    key = ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig"})
    key.ensure_kid()
    jwks = {"keys": [key.as_dict(private=False)]}
    body = _registered(
        web,
        initial_token,
        token_endpoint_auth_method="private_key_jwt",
        jwks=jwks,
        grant_types=["client_credentials"],
    )

    assert "client_secret" not in body
    assert "client_secret_expires_at" not in body
    assert (body["jwks"], body["response_types"]) == (jwks, [])
    now = int(time.time())
    claims = {
        "iss": body["client_id"],
        "sub": body["client_id"],
        "aud": ISSUER + "/oauth/token",
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    r = web.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "scope": "feed:read",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key),
        },
    )
    assert r.status_code == 200, r.text


REFUSED = [
    (
        "http redirect on a public host",
        {"redirect_uris": ["http://shop.example/callback"]},
        "invalid_redirect_uri",
        f"redirect_uris[0] {HTTPS_ONLY}",
    ),
    (
        "redirect with a fragment",
        {"redirect_uris": [REDIRECT_URI, REDIRECT_URI + "#top"]},
        "invalid_redirect_uri",
        "redirect_uris[1] must not have a fragment",
    ),
    (
        "relative redirect",
        {"redirect_uris": ["/callback"]},
        "invalid_redirect_uri",
        "redirect_uris[0] must be an absolute URI",
    ),
    (
        "no redirect_uris",
        {"redirect_uris": None},
        "invalid_redirect_uri",
        "at least one redirect_uri is required",
    ),
    (
        "redirect_uris as one string",
        {"redirect_uris": REDIRECT_URI},
        "invalid_client_metadata",
        "redirect_uris must be an array of strings",
    ),
    (
        "no client_name",
        {"client_name": None},
        "invalid_client_metadata",
        "client_name is required: customers see it to consent",
    ),
    (
        "client_name not a string",
        {"client_name": 42},
        "invalid_client_metadata",
        "client_name must be a string",
    ),
    (
        "blank client_name",
        {"client_name": "  "},
        "invalid_client_metadata",
        "name must not be empty",
    ),
    (
        "logo over http",
        {"logo_uri": "http://shop.example/logo.png"},
        "invalid_client_metadata",
        f"logo_uri {HTTPS_ONLY}",
    ),
    (
        "contact not an email",
        {"contacts": ["call us"]},
        "invalid_client_metadata",
        "contacts[0] must be an email address",
    ),
    (
        "public client",
        {"token_endpoint_auth_method": "none"},
        "invalid_client_metadata",
        "token_endpoint_auth_method must be one of "
        "client_secret_basic, client_secret_post, private_key_jwt",
    ),
    (
        "private_key_jwt without jwks",
        {"token_endpoint_auth_method": "private_key_jwt"},
        "invalid_client_metadata",
        "private_key_jwt needs jwks, the vendor's public keys",
    ),
    (
        "jwks_uri",
        {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://shop.example/jwks.json",
        },
        "invalid_client_metadata",
        "jwks_uri is not supported: send the public keys as jwks",
    ),
    (
        "jwks not an object",
        {"token_endpoint_auth_method": "private_key_jwt", "jwks": "keys"},
        "invalid_client_metadata",
        "jwks must be a JWK Set (a JSON object)",
    ),
    (
        "implicit response type",
        {"response_types": ["code", "token"]},
        "invalid_client_metadata",
        "response_types may only hold code",
    ),
    (
        "code without its grant type",
        {"response_types": ["code"], "grant_types": ["client_credentials"]},
        "invalid_client_metadata",
        "response_types code needs the authorization_code grant type",
    ),
    (
        "password grant",
        {"grant_types": ["authorization_code", "password"]},
        "invalid_client_metadata",
        "grant_types[1] must be one of authorization_code, refresh_token, client_credentials",
    ),
    (
        "no grant types",
        {"grant_types": []},
        "invalid_client_metadata",
        "at least one grant_type is required",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [pytest.param(o, e, d, id=i) for i, o, e, d in REFUSED],
)
def test_unacceptable_metadata_is_refused_and_nothing_is_stored(
    app: FastAPI,
    web: TestClient,
    initial_token: str,
    overrides: dict[str, Any],
    error: str,
    description: str,
) -> None:
    r = _register(web, initial_token, **overrides)

    _oauth_error(r, 400, error, description)
    with Session(app.state.engine) as fresh:
        assert service.list_vendors(fresh) == []


NOT_A_JSON_OBJECT = [
    pytest.param(b"", "application/json", id="empty"),
    pytest.param(b"{", "application/json", id="malformed"),
    pytest.param(b"[]", "application/json", id="array"),
    pytest.param(b'"client"', "application/json", id="string"),
    pytest.param(b"{}", "application/json", id="empty object"),
    # Issue 12, D5: each of these was a 500 (RecursionError and friends).
    pytest.param(b"[" * 3000 + b"]" * 3000, "application/json", id="3000 deep"),
    pytest.param(b'{"client_name": ' * 3000 + b"1" + b"}" * 3000, "application/json",
                 id="3000 deep objects"),
    pytest.param(b'{"client_name": "x", "n": NaN}', "application/json", id="NaN"),
    pytest.param(b'{"client_name": "x", "n": 1e999}', "application/json", id="1e999"),
    pytest.param(b'{"client_name": "x", "n": ' + b"9" * 5000 + b"}", "application/json",
                 id="long number"),
    pytest.param(b'{"client_name": "\xff"}', "application/json", id="invalid utf-8"),
    pytest.param(b'{"client_name": "\\udc00"}', "application/json", id="lone surrogate"),
    pytest.param(b'{"client_name": "x"}', "application/json; charset=latin-1", id="latin-1"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "content_type"), NOT_A_JSON_OBJECT)
def test_a_body_that_is_not_a_json_object_is_invalid_client_metadata(
    app: FastAPI, web: TestClient, initial_token: str, body: bytes, content_type: str
) -> None:
    r = web.post(
        REGISTER,
        content=body,
        headers=bearer(initial_token) | {"Content-Type": content_type},
    )

    _oauth_error(r, 400, "invalid_client_metadata", "send the client metadata as a JSON object")
    with Session(app.state.engine) as fresh:
        assert service.list_vendors(fresh) == []


def test_a_body_that_is_not_json_is_unsupported_media_type(
    web: TestClient, initial_token: str
) -> None:
    r = web.post(REGISTER, data={"client_name": "Lello"}, headers=bearer(initial_token))

    detail = "Send the client metadata as application/json."
    assert_problem(r, 415, "unsupported-media-type", detail=detail, instance=REGISTER)


def test_an_oversized_body_is_refused_before_registration(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    r = _register(web, initial_token, client_uri="https://x.example/" + "a" * 300_000)

    assert_problem(r, 413, "payload-too-large")
    with Session(app.state.engine) as fresh:
        assert service.list_vendors(fresh) == []


def test_a_refusal_does_not_echo_the_submitted_value(web: TestClient, initial_token: str) -> None:
    marker = "http://marker-5f1c.example/callback"
    r = _register(web, initial_token, redirect_uris=[marker])

    assert r.status_code == 400, r.text
    assert "marker-5f1c" not in r.text


# -- the initial access token --------------------------------------------------


def test_registration_without_a_token_is_401_with_a_bare_bearer_challenge(
    app: FastAPI, web: TestClient
) -> None:
    r = web.post(REGISTER, json=METADATA)

    _unauthorized(r, BEARER, "Registration needs an initial access token.")
    with Session(app.state.engine) as fresh:
        assert service.list_vendors(fresh) == []


def test_registration_with_an_unknown_token_is_401_invalid_token(web: TestClient) -> None:
    r = _register(web, "not-a-token")

    _unauthorized(r, INVALID_TOKEN, "The initial access token is not valid.")


def test_registration_with_an_expired_initial_token_is_refused(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    _set_initial_token(app, initial_token, expires_at=datetime.now(UTC) - timedelta(seconds=1))

    _unauthorized(_register(web, initial_token), INVALID_TOKEN)


def test_registration_with_a_revoked_initial_token_is_refused(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    _set_initial_token(app, initial_token, revoked_at=datetime.now(UTC))

    _unauthorized(_register(web, initial_token), INVALID_TOKEN)


def test_the_initial_token_counts_only_in_the_authorization_header(
    web: TestClient, initial_token: str
) -> None:
    in_query = web.post(REGISTER, params={"access_token": initial_token}, json=METADATA)
    as_basic = web.post(REGISTER, json=METADATA, auth=(initial_token, ""))

    _unauthorized(in_query, BEARER)
    _unauthorized(as_basic, BEARER)


def test_a_registration_access_token_does_not_open_registration(
    web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = _register(web, registration["registration_access_token"])

    _unauthorized(r, INVALID_TOKEN)


# -- RFC 7592: read --------------------------------------------------------------


def test_the_registration_reads_back_without_the_client_secret(
    web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = web.get(_path(registration), headers=_manage(registration))

    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    expected = {k: v for k, v in registration.items() if k != "client_secret"}
    assert r.json() == expected


def test_an_operator_registered_vendor_cannot_be_managed(web: TestClient, vendor: Vendor) -> None:
    path = f"{REGISTER}/{vendor.client_id}"

    # Not with its client secret, nor with anything else: it has no
    # registration access token.
    for token in (vendor.client_secret, "anything"):
        _unauthorized(web.get(path, headers=bearer(token)), INVALID_TOKEN)
        _unauthorized(web.delete(path, headers=bearer(token)), INVALID_TOKEN)


def test_managing_without_a_token_is_401_with_a_bare_bearer_challenge(
    web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    _unauthorized(web.get(_path(registration)), BEARER)


def test_the_initial_access_token_does_not_manage_a_registration(
    web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    _unauthorized(web.get(_path(registration), headers=bearer(initial_token)), INVALID_TOKEN)


# -- RFC 7592: one client's token, another client's URI ----------------------------


def test_a_registration_token_never_works_on_another_clients_uri(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    mine = _registered(web, initial_token)
    theirs = _registered(web, initial_token, client_name="Farmácia Central")
    misuse = _manage(mine)
    unknown = web.get(f"{REGISTER}/vnd_doesnotexist", headers=misuse)

    read = web.get(_path(theirs), headers=misuse)
    update = web.put(
        _path(theirs),
        headers=misuse,
        json=METADATA | {"client_id": theirs["client_id"], "client_name": "Hijacked"},
    )
    delete = web.delete(_path(theirs), headers=misuse)

    for r in (read, update, delete):
        _unauthorized(r, INVALID_TOKEN)
        # The same answer as for a client that does not exist: nothing leaks.
        assert {k: v for k, v in r.json().items() if k != "instance"} == {
            k: v for k, v in unknown.json().items() if k != "instance"
        }
    row = _stored(app, theirs["client_id"])
    assert (row.name, row.disabled_at) == ("Farmácia Central", None)
    assert web.get(_path(theirs), headers=_manage(theirs)).status_code == 200


# -- RFC 7592: update ------------------------------------------------------------


def _update(web: TestClient, registration: dict[str, Any], **body: Any) -> httpx.Response:
    return web.put(_path(registration), headers=_manage(registration), json=body)


def test_an_update_replaces_the_metadata_and_drops_what_was_left_out(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)
    new_uris = ["https://shop.example/cb2", "http://localhost:9000/cb"]

    r = _update(
        web,
        registration,
        client_id=registration["client_id"],
        client_name="Livraria Lello & Irmão",
        redirect_uris=new_uris,
        grant_types=["authorization_code", "refresh_token"],
        token_endpoint_auth_method="client_secret_post",
    )

    assert r.status_code == 200, r.text
    assert r.json() == {
        "client_id": registration["client_id"],
        "client_id_issued_at": registration["client_id_issued_at"],
        "client_secret_expires_at": 0,
        "registration_access_token": registration["registration_access_token"],
        "registration_client_uri": registration["registration_client_uri"],
        "client_name": "Livraria Lello & Irmão",
        "redirect_uris": new_uris,
        "token_endpoint_auth_method": "client_secret_post",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    assert web.get(_path(registration), headers=_manage(registration)).json() == r.json()
    row = _stored(app, registration["client_id"])
    assert (row.logo_uri, row.policy_uri, row.notify_uri, row.contacts) == (None, None, None, [])
    # The credentials stay.
    assert row.secret_hash == app.state.vault.token_hash(registration["client_secret"])


def test_an_update_takes_effect_in_the_authorization_flow(
    app: FastAPI, web: TestClient, initial_token: str, ana: Person
) -> None:
    registration = _registered(web, initial_token)
    moved = "https://shop.example/new-callback"
    r = _update(
        web,
        registration,
        client_id=registration["client_id"],
        client_name="Livraria Lello",
        redirect_uris=[moved],
        grant_types=["authorization_code", "refresh_token"],
    )
    assert r.status_code == 200, r.text

    vendor = Vendor(registration["client_id"], registration["client_secret"], moved, web)
    body = tokens_for(ana, vendor, "profile.email:read")
    assert "refresh_token" in body


def test_an_update_with_the_current_client_secret_is_accepted(
    web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = _update(
        web,
        registration,
        **METADATA,
        client_id=registration["client_id"],
        client_secret=registration["client_secret"],
    )

    assert r.status_code == 200, r.text
    assert "client_secret" not in r.json()


UPDATE_REFUSED = [
    ("no client_id", {"client_id": None}, "client_id must be sent and be this client's id"),
    (
        "another client_id",
        {"client_id": "vnd_other"},
        "client_id must be sent and be this client's id",
    ),
    (
        "a client_secret of the client's choosing",
        {"client_secret": "my-own-secret"},
        "client_secret is not this client's current secret",
    ),
    (
        "the registration access token",
        {"registration_access_token": "new"},
        "registration_access_token must not be sent in an update",
    ),
    (
        "client_id_issued_at",
        {"client_id_issued_at": 0},
        "client_id_issued_at must not be sent in an update",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "description"),
    [pytest.param(o, d, id=i) for i, o, d in UPDATE_REFUSED],
)
def test_an_update_breaking_rfc_7592_rules_is_invalid_request_and_changes_nothing(
    app: FastAPI,
    web: TestClient,
    initial_token: str,
    overrides: dict[str, Any],
    description: str,
) -> None:
    registration = _registered(web, initial_token)
    body = METADATA | {"client_id": registration["client_id"], "client_name": "Changed"}
    body = {k: v for k, v in (body | overrides).items() if v is not None}

    r = web.put(_path(registration), headers=_manage(registration), json=body)

    _oauth_error(r, 400, "invalid_request", description)
    assert _stored(app, registration["client_id"]).name == "Livraria Lello"


def test_an_update_with_an_unsafe_redirect_uri_is_refused_and_changes_nothing(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = _update(
        web,
        registration,
        **(METADATA | {"redirect_uris": ["http://evil.example/cb"]}),
        client_id=registration["client_id"],
    )

    _oauth_error(r, 400, "invalid_redirect_uri", f"redirect_uris[0] {HTTPS_ONLY}")
    assert _stored(app, registration["client_id"]).redirect_uris == [REDIRECT_URI]


def test_an_update_cannot_trade_the_client_secret_for_private_key_jwt(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)
    jwks = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}

    r = _update(
        web,
        registration,
        **METADATA,
        client_id=registration["client_id"],
        token_endpoint_auth_method="private_key_jwt",
        jwks=jwks,
    )

    _oauth_error(
        r,
        400,
        "invalid_client_metadata",
        "token_endpoint_auth_method cannot move between a client secret and "
        "private_key_jwt; register a new client instead",
    )
    row = _stored(app, registration["client_id"])
    assert (row.token_endpoint_auth_method, row.jwks) == ("client_secret_basic", None)


def test_an_update_nested_3000_deep_is_invalid_client_metadata_and_changes_nothing(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = web.put(
        _path(registration),
        headers=_manage(registration) | {"Content-Type": "application/json"},
        content=b"[" * 3000 + b"]" * 3000,
    )

    _oauth_error(r, 400, "invalid_client_metadata", "send the client metadata as a JSON object")
    assert _stored(app, registration["client_id"]).name == "Livraria Lello"


def test_an_update_that_is_not_json_is_unsupported_media_type(
    web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = web.put(_path(registration), headers=_manage(registration), content=b"client_name=x")

    assert r.status_code == 415, r.text


# -- RFC 7592: delete ------------------------------------------------------------


def test_deleting_a_registration_disables_the_vendor_and_its_token(
    app: FastAPI, web: TestClient, initial_token: str
) -> None:
    registration = _registered(web, initial_token)

    r = web.delete(_path(registration), headers=_manage(registration))

    assert r.status_code == 204, r.text
    assert r.content == b""
    assert r.headers["cache-control"] == "no-store"
    row = _stored(app, registration["client_id"])
    assert row.disabled_at is not None
    assert row.registration_token_hash is None
    for again in (
        web.get(_path(registration), headers=_manage(registration)),
        web.delete(_path(registration), headers=_manage(registration)),
    ):
        _unauthorized(again, INVALID_TOKEN)


def test_a_deleted_registrations_tokens_stop_working(
    app: FastAPI, web: TestClient, initial_token: str, ana: Person
) -> None:
    registration = _registered(
        web, initial_token, grant_types=["authorization_code", "refresh_token"]
    )
    vendor = _as_vendor(app, registration)
    body = tokens_for(ana, vendor, "openid profile.email:read")
    userinfo = bearer(body["access_token"])
    assert web.get("/oauth/userinfo", headers=userinfo).status_code == 200

    assert web.delete(_path(registration), headers=_manage(registration)).status_code == 204

    r = web.get("/oauth/userinfo", headers=userinfo)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"
    with Session(app.state.engine) as fresh:
        assert (
            tokens.check_access_token(fresh.connection(), app.state.vault, body["access_token"])
            is None
        )
    refreshed = vendor.refresh(body["refresh_token"])
    assert refreshed.status_code == 401, refreshed.text
    assert refreshed.json()["error"] == "invalid_client"


# -- secrets stay out of the logs -----------------------------------------------


def test_no_secret_reaches_the_logs(
    app: FastAPI,
    web: TestClient,
    initial_token: str,
    ana: Person,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    registration = _registered(web, initial_token)
    vendor = _as_vendor(app, registration)
    tokens_for(ana, vendor, "profile.email:read")
    _update(
        web,
        registration,
        **METADATA,
        client_id=registration["client_id"],
        client_secret="a-wrong-secret-guess",
    )
    web.get(_path(registration), headers=_manage(registration))
    web.delete(_path(registration), headers=_manage(registration))
    _register(web, "a-wrong-initial-token")

    logged = caplog.text
    assert registration["client_id"] in logged  # the log does say what happened
    for secret in (
        initial_token,
        registration["client_secret"],
        registration["registration_access_token"],
        "a-wrong-secret-guess",
        "a-wrong-initial-token",
    ):
        assert secret not in logged
