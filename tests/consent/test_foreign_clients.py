"""Foreign clients drive the real server over HTTP, with their own checks on.

The server runs as ``vrm serve`` in a subprocess (tests/liveserver.py), so
what is tested is what a vendor meets: discovery documents, redirects,
cookies, the HTML login and consent forms, the token, revocation and
introspection endpoints.

- openid-client (an OpenID-certified relying party for Node, on oauth4webapi)
  runs tests/consent/node/flow.mjs: discovery with issuer equality, the code
  flow with PKCE S256, state and the RFC 9207 ``iss`` check, token response
  validation (and ID token and UserInfo checks when OpenID Connect is
  advertised), refresh rotation and replay, code reuse, revocation,
  introspection and a denial. The harness installs it from the lockfile
  (``npm ci``) when node_modules is missing or stale.
- Authlib's httpx ``OAuth2Client`` runs the same flow from Python, with
  httpx as the browser.
"""

from __future__ import annotations

import json
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning

from tests.liveserver import Browser, Customer, LiveServer
from tests.nodejs import node_with_packages, options

# Authlib 1.9 warns once, on import, that its httpx client prefers httpx2; the
# project (and FastAPI's TestClient) use httpx, which it still supports.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning, message=".*httpx2")
    from authlib.integrations.httpx_client import OAuth2Client, OAuthError

NODE_DIR = Path(__file__).resolve().parent / "node"
PURPOSE = "dpv:ServiceProvision"
SCOPE = "profile.email:read profile.phone:read preferences:read"
UNTICKED = "profile.phone:read"
GRANTED = {"profile.email:read", "preferences:read"}
NODE_TIMEOUT = 120


@pytest.fixture(scope="module")
def server(shared_live_server: LiveServer) -> LiveServer:
    return shared_live_server


# -- openid-client ------------------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    """Node with openid-client installed from package-lock.json: ``npm ci``
    runs when node_modules is missing or differs from the lockfile."""
    return node_with_packages(NODE_DIR)


def run_flow(node: str, server: LiveServer, customer: Customer, *args: str) -> dict[str, Any]:
    vendor = server.vendor
    done = subprocess.run(
        [
            node,
            str(NODE_DIR / "flow.mjs"),
            *options(
                issuer=server.url,
                client_id=vendor.client_id,
                client_secret=vendor.client_secret,
                email=customer.email,
                password=customer.password,
                redirect_uri=vendor.redirect_uri,
                scope=SCOPE,
                untick=UNTICKED,
            ),
            *args,
        ],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"openid-client flow failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def expected_flow(server: LiveServer, algorithm: str) -> dict[str, Any]:
    """Everything flow.mjs reports, for a server that passes every check."""
    oidc = algorithm == "oidc"
    offered = sorted(SCOPE.split())
    again = ["GET /oauth/authorize 200", "POST /oauth/authorize 303"]
    tokens = {"token_type": "bearer", "scope_is_granted": True, "refresh_token": True}
    result = {
        "ok": True,
        "discovery": {
            "algorithm": algorithm,
            "issuer": server.url,
            "iss_parameter_supported": True,
            "code_challenge_methods_supported": ["S256"],
        },
        "authorizations": [
            {
                "trail": [
                    "GET /oauth/authorize 303",
                    "GET /login 200",
                    "POST /login 303",
                    "GET /oauth/authorize 200",
                    "POST /oauth/authorize 303",
                ],
                "iss": server.url,
                "offered": offered,
            },
            *({"trail": again, "iss": server.url, "offered": offered} for _ in range(3)),
        ],
        "code_exchange": {**tokens, "id_token": oidc},
        "introspection": {
            "access_token": True,
            "refresh_token": True,
            "client_id": True,
            "scope_is_granted": True,
        },
        "refresh": {**tokens, "rotated": True},
        "refresh_replay": {
            "error": "invalid_grant",
            "status": 400,
            "newest_refresh_token_active": False,
            "newest_access_token_active": False,
            "first_access_token_active": False,
            "newest_refresh_token_grant": "invalid_grant",
        },
        "code_reuse": {
            "error": "invalid_grant",
            "status": 400,
            "first_access_token_active": False,
            "first_refresh_token_active": False,
        },
        "revocation": {
            "refresh_token_active": False,
            "access_token_active": False,
            "refresh_token_grant": "invalid_grant",
            "repeat_revocation_ok": True,
        },
        "denied": {"error": "access_denied"},
    }
    if oidc:
        result["userinfo"] = {"sub_matches": True}
    return result


def server_speaks_oidc(server: LiveServer) -> bool:
    return httpx.get(f"{server.url}/.well-known/openid-configuration").status_code == 200


def test_openid_client_completes_the_flow_with_its_own_validation_on(
    server: LiveServer, node: str
) -> None:
    """Discovery picks OpenID Connect when the server offers it, so this test
    holds ID tokens (claims and signature) and UserInfo to the client's rules
    as soon as they exist."""
    result = run_flow(node, server, server.new_customer("openid-client"))
    algorithm = "oidc" if server_speaks_oidc(server) else "oauth2"
    assert result.pop("client")["openid-client"] == "6.8.9"
    assert result == expected_flow(server, algorithm)


def test_openid_client_completes_the_flow_on_rfc8414_metadata_alone(
    server: LiveServer, node: str
) -> None:
    result = run_flow(node, server, server.new_customer("oauth2-client"), "--algorithm", "oauth2")
    del result["client"]
    assert result == expected_flow(server, "oauth2")


# -- Authlib's httpx client ---------------------------------------------------


@dataclass
class Metadata:
    authorization_endpoint: str
    token_endpoint: str
    revocation_endpoint: str
    introspection_endpoint: str


def discover(server: LiveServer) -> Metadata:
    r = httpx.get(f"{server.url}/.well-known/oauth-authorization-server")
    assert r.status_code == 200, r.text
    doc = r.json()
    # RFC 8414 3.3: the issuer in the document is the one we asked.
    assert doc["issuer"] == server.url
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    return Metadata(
        doc["authorization_endpoint"],
        doc["token_endpoint"],
        doc["revocation_endpoint"],
        doc["introspection_endpoint"],
    )


@pytest.fixture
def authlib_client(server: LiveServer) -> Iterator[OAuth2Client]:
    vendor = server.vendor
    with OAuth2Client(
        vendor.client_id,
        vendor.client_secret,
        redirect_uri=vendor.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as oauth:
        yield oauth


@pytest.fixture
def browser(server: LiveServer) -> Iterator[Browser]:
    b = Browser(server, server.new_customer("authlib"))
    yield b
    b.close()


@dataclass
class Authorized:
    location: str
    state: str
    verifier: str
    token: dict[str, Any]


def authorize_with_authlib(
    oauth: OAuth2Client,
    browser: Browser,
    meta: Metadata,
    *,
    untick: tuple[str, ...] = (),
    **params: str,
) -> Authorized:
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(
        meta.authorization_endpoint,
        code_verifier=verifier,
        scope=SCOPE,
        purpose=PURPOSE,
        **params,
    )
    location = browser.authorize(url, untick=untick)
    query = parse_qs(urlsplit(location).query)
    # Authlib does not check RFC 9207's iss; a careful client does.
    assert query["iss"] == [browser.server.url], location
    token = oauth.fetch_token(
        meta.token_endpoint, authorization_response=location, state=state, code_verifier=verifier
    )
    return Authorized(location, state, verifier, dict(token))


def introspect(oauth: OAuth2Client, meta: Metadata, token: str, hint: str) -> dict[str, Any]:
    r = oauth.introspect_token(meta.introspection_endpoint, token=token, token_type_hint=hint)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_authlib_client_gets_exactly_the_granted_scope_and_rotates_refresh_tokens(
    server: LiveServer, authlib_client: OAuth2Client, browser: Browser
) -> None:
    meta = discover(server)
    first = authorize_with_authlib(authlib_client, browser, meta, untick=(UNTICKED,))
    assert browser.trail == [
        "GET /oauth/authorize 303",
        "GET /login 200",
        "POST /login 303",
        "GET /oauth/authorize 200",
        "POST /oauth/authorize 303",
    ]
    token = first.token
    assert token["token_type"] == "Bearer"
    assert set(token["scope"].split()) == GRANTED
    assert len(token["scope"].split()) == len(GRANTED)
    info = introspect(authlib_client, meta, token["access_token"], "access_token")
    assert info["active"] is True
    assert info["client_id"] == server.vendor.client_id
    assert set(info["scope"].split()) == GRANTED

    rotated = dict(authlib_client.refresh_token(meta.token_endpoint, token["refresh_token"]))
    assert rotated["refresh_token"] != token["refresh_token"]
    assert rotated["access_token"] != token["access_token"]
    assert set(rotated["scope"].split()) == GRANTED

    with pytest.raises(OAuthError) as replay:
        authlib_client.refresh_token(meta.token_endpoint, token["refresh_token"])
    assert replay.value.error == "invalid_grant"
    # The replay killed the whole family (RFC 9700 4.14.2).
    for value, hint in (
        (rotated["refresh_token"], "refresh_token"),
        (rotated["access_token"], "access_token"),
        (token["access_token"], "access_token"),
    ):
        assert introspect(authlib_client, meta, value, hint) == {"active": False}


def test_authlib_client_sees_a_reused_code_refused_and_its_tokens_revoked(
    server: LiveServer, authlib_client: OAuth2Client, browser: Browser
) -> None:
    meta = discover(server)
    first = authorize_with_authlib(authlib_client, browser, meta)
    token = first.token
    assert introspect(authlib_client, meta, token["access_token"], "access_token")["active"]
    with pytest.raises(OAuthError) as reuse:
        authlib_client.fetch_token(
            meta.token_endpoint,
            authorization_response=first.location,
            state=first.state,
            code_verifier=first.verifier,
        )
    assert reuse.value.error == "invalid_grant"
    assert introspect(authlib_client, meta, token["access_token"], "access_token") == {
        "active": False
    }
    assert introspect(authlib_client, meta, token["refresh_token"], "refresh_token") == {
        "active": False
    }


def test_authlib_client_revokes_a_refresh_token_and_its_access_token_dies_too(
    server: LiveServer, authlib_client: OAuth2Client, browser: Browser
) -> None:
    meta = discover(server)
    token = authorize_with_authlib(authlib_client, browser, meta).token
    r = authlib_client.revoke_token(
        meta.revocation_endpoint, token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert r.status_code == 200, r.text
    assert introspect(authlib_client, meta, token["refresh_token"], "refresh_token") == {
        "active": False
    }
    # RFC 7009 2.1: revoking a refresh token ends the access tokens of its grant.
    assert introspect(authlib_client, meta, token["access_token"], "access_token") == {
        "active": False
    }
    with pytest.raises(OAuthError) as dead:
        authlib_client.refresh_token(meta.token_endpoint, token["refresh_token"])
    assert dead.value.error == "invalid_grant"


def test_authlib_client_asking_a_refresh_for_more_than_granted_keeps_its_refresh_token(
    server: LiveServer, browser: Browser
) -> None:
    """Authlib's client sends its configured scope on every refresh. After a
    partial consent that scope is wider than the grant: the server must say
    invalid_scope (RFC 6749 6) and leave the refresh token as it was, since no
    new token was issued; a retry without the scope is not a replay."""
    meta = discover(server)
    vendor = server.vendor
    with OAuth2Client(
        vendor.client_id,
        vendor.client_secret,
        scope=SCOPE,
        redirect_uri=vendor.redirect_uri,
        code_challenge_method="S256",
    ) as oauth:
        token = authorize_with_authlib(oauth, browser, meta, untick=(UNTICKED,)).token
        with pytest.raises(OAuthError) as wider:
            oauth.refresh_token(meta.token_endpoint, token["refresh_token"])
        assert wider.value.error == "invalid_scope"
        oauth.scope = None
        rotated = dict(oauth.refresh_token(meta.token_endpoint, token["refresh_token"]))
        assert set(rotated["scope"].split()) == GRANTED
