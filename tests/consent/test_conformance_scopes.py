"""Scope handling in the OpenID conformance replica, token side.

The Basic and Config OP checks of scope handling: unknown scopes are ignored
(OIDC Core 3.1.2.1) and the token response says what was granted (RFC 6749
5.1), OIDC's standard scopes read as the profile fields they name, a
generic openid-client asking ``openid profile email`` signs in, and a
refresh may narrow (RFC 6749 6). The token endpoint errors are in
test_conformance_token.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Person
from tests.consent.conftest import Vendor, start, tokens_for
from tests.consent.test_conformance_token import oauth_error
from tests.liveserver import Browser, LiveServer
from tests.nodejs import node_with_packages, options

NODE_DIR = Path(__file__).resolve().parent / "node"


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
        oauth_error(r, 400, "invalid_scope")
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
        oauth_error(wrong, 400, "invalid_scope")


# -- a generic OIDC client signs in (Basic OP: scope handling) --------------------


@pytest.fixture(scope="module")
def server(shared_live_server: LiveServer) -> LiveServer:
    return shared_live_server


def _signin(node: str, server: LiveServer, phase: str, *args: str) -> dict[str, Any]:
    vendor = server.vendor
    done = subprocess.run(
        [
            node,
            str(NODE_DIR / "signin.mjs"),
            phase,
            *options(
                issuer=server.url,
                client_id=vendor.client_id,
                client_secret=vendor.client_secret,
                redirect_uri=vendor.redirect_uri,
            ),
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
        *options(
            callback=callback,
            state=begun["state"],
            nonce=begun["nonce"],
            verifier=begun["verifier"],
        ),
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


def test_discovery_advertises_the_standard_scopes_it_understands(vendor: Vendor) -> None:
    doc = vendor.client.get("/.well-known/openid-configuration").json()
    scopes = doc["scopes_supported"]
    assert [s for s in scopes if ":" not in s] == ["openid", "profile", "email", "phone", "address"]
    assert "profile.given_name:read" in scopes
