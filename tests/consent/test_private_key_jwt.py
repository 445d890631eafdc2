"""private_key_jwt (RFC 7523): a vendor with no secret signs a short-lived
assertion; each one works once, only for this server, only with its key.
A refused assertion is invalid_client with 400 (RFC 6749 5.2 asks for 401
only when the client authenticated through the Authorization header)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlmodel import Session

from consent.vendors import service as vendors
from tests.conftest import Person
from tests.consent.conftest import ISSUER, REDIRECT_URI, authorize

TOKEN_URL = ISSUER + "/oauth/token"


@dataclass
class KeyVendor:
    client_id: str
    key: ECKey
    client: TestClient

    def assertion(self, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": TOKEN_URL,
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        return jwt.encode({"alg": "ES256", "kid": self.key.kid}, claims, self.key)

    def token(self, assertion: str | None = None, **form: str) -> Any:
        body = {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion or self.assertion(),
            **form,
        }
        return self.client.post("/oauth/token", data=body)


@pytest.fixture
def key_vendor(app: FastAPI) -> KeyVendor:
    key = ECKey.generate_key("P-256", {"alg": "ES256", "use": "sig"})
    key.ensure_kid()
    with Session(app.state.engine) as session:
        vendor, secret = vendors.register(
            session,
            app.state.vault,
            name="Keyed Shop",
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method="private_key_jwt",
            jwks={"keys": [key.as_dict(private=False)]},
        )
    assert secret is None
    return KeyVendor(vendor.id, key, TestClient(app))


def _cc(vendor: KeyVendor, assertion: str | None = None) -> Any:
    return vendor.token(assertion, grant_type="client_credentials", scope="feed:read")


def test_a_signed_assertion_authenticates_the_vendor(key_vendor: KeyVendor) -> None:
    r = _cc(key_vendor)
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "feed:read"


def test_the_code_flow_works_with_private_key_jwt(ana: Person, key_vendor: KeyVendor) -> None:
    from tests.consent.conftest import Vendor

    as_vendor = Vendor(key_vendor.client_id, "-", REDIRECT_URI, key_vendor.client)
    auth = authorize(ana, as_vendor, "profile.email:read")
    r = key_vendor.token(
        grant_type="authorization_code",
        code=auth.code,
        redirect_uri=REDIRECT_URI,
        code_verifier=auth.verifier,
    )
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "profile.email:read"


# A refused assertion is 400 invalid_client (docs/vendors.md): RFC 6749 5.2
# requires 401 only for credentials sent in the Authorization header.


def test_an_assertion_works_once(key_vendor: KeyVendor) -> None:
    assertion = key_vendor.assertion()
    assert _cc(key_vendor, assertion).status_code == 200
    again = _cc(key_vendor, assertion)
    assert again.status_code == 400, again.text
    assert again.json()["error"] == "invalid_client"


def test_an_assertion_signed_with_another_key_is_refused(key_vendor: KeyVendor) -> None:
    other = ECKey.generate_key("P-256", {"alg": "ES256", "kid": key_vendor.key.kid})
    now = int(time.time())
    claims = {
        "iss": key_vendor.client_id,
        "sub": key_vendor.client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "jti": "x" + secrets.token_hex(8),
    }
    forged = jwt.encode({"alg": "ES256", "kid": key_vendor.key.kid}, claims, other)
    r = _cc(key_vendor, forged)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://elsewhere.example/token"},
        {"exp": int(time.time()) - 120},
        {"exp": int(time.time()) + 3600},
        {"iss": "vnd_someone_else"},
        {"jti": None},
    ],
    ids=["audience", "expired", "too-long", "iss-not-sub", "no-jti"],
)
def test_assertions_with_bad_claims_are_refused(
    key_vendor: KeyVendor, overrides: dict[str, Any]
) -> None:
    claims = {k: v for k, v in overrides.items() if v is not None}
    assertion = key_vendor.assertion(**claims)
    if overrides.get("jti", "") is None:
        payload = json.loads(base64.urlsafe_b64decode(assertion.split(".")[1] + "=="))
        del payload["jti"]
        assertion = jwt.encode({"alg": "ES256", "kid": key_vendor.key.kid}, payload, key_vendor.key)
    r = _cc(key_vendor, assertion)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_client"


def test_an_unsigned_assertion_is_refused(key_vendor: KeyVendor) -> None:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "iss": key_vendor.client_id,
        "sub": key_vendor.client_id,
        "aud": TOKEN_URL,
        "exp": now + 60,
        "jti": secrets.token_hex(8),
    }
    unsigned = f"{b64({'alg': 'none'})}.{b64(claims)}."
    r = _cc(key_vendor, unsigned)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "invalid_client"


def test_a_keyed_vendor_cannot_fall_back_to_a_secret(key_vendor: KeyVendor) -> None:
    r = key_vendor.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "feed:read"},
        auth=(key_vendor.client_id, "anything"),
    )
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_metadata_advertises_private_key_jwt(client: TestClient) -> None:
    doc = client.get("/.well-known/oauth-authorization-server").json()
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    assert "none" not in doc["token_endpoint_auth_signing_alg_values_supported"]
    assert "HS256" not in doc["token_endpoint_auth_signing_alg_values_supported"]
