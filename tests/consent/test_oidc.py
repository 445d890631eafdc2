"""OpenID Connect: signed ID tokens, JWKS, pairwise subjects, and a userinfo
endpoint that gives the granted profile fields and nothing else."""

from __future__ import annotations

from typing import Any

from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet

from tests.conftest import Person
from tests.consent.conftest import ISSUER, Vendor, tokens_for
from tests.kit import bearer

PROFILE = {
    "given_name": "Ana",
    "family_name": "Silva",
    "email": "ana.silva@example.net",
    "phone": "+351912345678",
    "birth_date": "1990-04-01",
    "language": "pt-PT",
}


def _id_token(vendor: Vendor, body: dict[str, Any]) -> dict[str, Any]:
    keys = KeySet.import_key_set(vendor.client.get("/oauth/jwks").json())
    token = jwt.decode(body["id_token"], keys, algorithms=["ES256"])
    claims: dict[str, Any] = token.claims
    return claims


def test_openid_gives_an_es256_id_token_verifiable_with_the_jwks(
    ana: Person, vendor: Vendor
) -> None:
    body = tokens_for(ana, vendor, "openid profile.email:read", nonce="n-0S6_WzA2Mj")
    claims = _id_token(vendor, body)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == [vendor.client_id]
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] > claims["iat"]
    assert "at_hash" in claims
    # Pairwise, and the same sub as introspection reports.
    assert claims["sub"] != ana.id
    assert claims["sub"] == vendor.introspect(body["access_token"])["sub"]
    # No profile values ride in the ID token.
    assert "email" not in claims


def test_an_id_token_does_not_verify_with_another_key(ana: Person, vendor: Vendor) -> None:
    body = tokens_for(ana, vendor, "openid")
    ours = vendor.client.get("/oauth/jwks").json()["keys"][0]
    # Same kid, other key: only the signature check can tell them apart.
    stranger = KeySet([ECKey.generate_key("P-256", {"alg": "ES256", "kid": ours["kid"]})])
    try:
        jwt.decode(body["id_token"], stranger, algorithms=["ES256"])
    except (BadSignatureError, ValueError):
        pass
    else:
        raise AssertionError("an ID token verified under a key that did not sign it")


def test_the_jwks_holds_only_public_key_material(client: Any) -> None:
    [key] = client.get("/oauth/jwks").json()["keys"]
    assert key["kty"] == "EC"
    assert key["alg"] == "ES256"
    assert "d" not in key
    assert key["kid"]


def test_discovery_documents_name_the_oidc_endpoints(client: Any) -> None:
    doc = client.get("/.well-known/openid-configuration").json()
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == ISSUER + "/oauth/jwks"
    assert doc["userinfo_endpoint"] == ISSUER + "/oauth/userinfo"
    assert doc["subject_types_supported"] == ["pairwise"]
    assert doc["id_token_signing_alg_values_supported"] == ["ES256"]
    assert "openid" in doc["scopes_supported"]


def test_userinfo_gives_only_the_granted_profile_fields(ana: Person, vendor: Vendor) -> None:
    assert ana.client.put("/api/v1/me/profile", json=PROFILE).status_code == 200
    body = tokens_for(ana, vendor, "openid profile.email:read profile.given_name:read")
    r = vendor.client.get("/oauth/userinfo", headers=bearer(body["access_token"]))
    assert r.status_code == 200, r.text
    info = r.json()
    assert set(info) == {"sub", "email", "given_name"}
    assert info["email"] == "ana.silva@example.net"
    assert info["given_name"] == "Ana"
    assert info["sub"] == _id_token(vendor, body)["sub"]


def test_userinfo_follows_a_narrowed_grant_at_once(ana: Person, vendor: Vendor) -> None:
    assert ana.client.put("/api/v1/me/profile", json=PROFILE).status_code == 200
    body = tokens_for(ana, vendor, "openid profile:read")
    headers = bearer(body["access_token"])
    full = vendor.client.get("/oauth/userinfo", headers=headers).json()
    assert full["phone_number"] == "+351912345678"
    assert full["birthdate"] == "1990-04-01"
    assert full["locale"] == "pt-PT"
    ana.client.patch(
        f"/api/v1/me/grants/{body['grant_id']}", json={"scopes": ["profile.family_name:read"]}
    )
    narrowed = vendor.client.get("/oauth/userinfo", headers=headers).json()
    assert set(narrowed) == {"sub", "family_name"}
    ana.client.delete(f"/api/v1/me/grants/{body['grant_id']}")
    r = vendor.client.get("/oauth/userinfo", headers=headers)
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


def test_userinfo_needs_openid_and_a_bearer_header(ana: Person, vendor: Vendor) -> None:
    body = tokens_for(ana, vendor, "profile.email:read")
    token = body["access_token"]
    r = vendor.client.get("/oauth/userinfo", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["error"] == "insufficient_scope"
    # Checklist 16: never from the query string or a form body.
    openid = tokens_for(ana, vendor, "openid", prompt="consent")["access_token"]
    assert vendor.client.get("/oauth/userinfo", params={"access_token": openid}).status_code == 401
    r = vendor.client.post("/oauth/userinfo", data={"access_token": openid})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    ok = vendor.client.post("/oauth/userinfo", headers=bearer(openid))
    assert ok.status_code == 200


def test_a_nonce_cannot_be_replayed(ana: Person, vendor: Vendor) -> None:
    from tests.consent.conftest import authorize, start

    authorize(ana, vendor, "openid", nonce="same-nonce-twice")
    again = start(ana, vendor, "openid", nonce="same-nonce-twice")
    assert again.query.get("error") == ["invalid_request"], again.location


def test_prompt_none_without_a_session_answers_login_required(app: Any, vendor: Vendor) -> None:
    from fastapi.testclient import TestClient

    from tests.consent.conftest import start

    stranger = Person("x@example.org", "-", TestClient(app), "-")
    auth = start(stranger, vendor, "openid", prompt="none")
    assert auth.query.get("error") == ["login_required"], auth.page.headers
    assert auth.query["iss"] == [ISSUER]
