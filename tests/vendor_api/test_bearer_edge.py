"""One bearer-token edge (consent/oauth/bearer.py): every resource that
takes an access token reads the ``Authorization`` header the same way, so
an odd header gets the same answer from the data read (the lean app and
its route), the feed and userinfo. RFC 6750 2.1: ``"Bearer" 1*SP token``,
the scheme case-insensitive (RFC 9110 11.1); a header without a token is
no token (a bare challenge, 3.1); anything else is a token, active or not."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import feed_token

BARE = 'Bearer realm="vrm"'
INVALID = 'Bearer realm="vrm", error="invalid_token"'
# Each header, with {} for the token; and how it is read: "token" for the
# token itself, "none" for no token at all, "other" for another token.
HEADERS = [
    ("Bearer  {}", "token"),  # 1*SP: more than one space is still the header
    ("bearer {}", "token"),
    ("BEARER {}", "token"),
    ("Bearer", "none"),
    ("Bearer ", "none"),
    ("Basic {}", "none"),  # not a Bearer header: no token sent
    ("Bearer {},x", "other"),  # a comma is no part of a token (RFC 6750 2.1)
    ("Bearer {} x", "other"),
]


def _problem(path: str, detail: str) -> dict[str, Any]:
    return {
        "type": "urn:vrm:problem:invalid-token",
        "title": "Authentication required",
        "status": 401,
        "detail": detail,
        "instance": path,
    }


def _answers(app: FastAPI, vendor: Vendor, header: str, customer: str, feed: str) -> Any:
    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    def auth(token: str) -> dict[str, str]:
        return {"Authorization": header.format(token)}

    return {
        "/v1/data": vendor.client.get("/v1/data", headers=auth(customer)),
        # FastAPI's own dispatch reaches the same read through its route.
        "routed /v1/data": TestClient(routed).get("/v1/data", headers=auth(customer)),
        "/v1/feed": vendor.client.get("/v1/feed", headers=auth(feed)),
        "/oauth/userinfo": vendor.client.get("/oauth/userinfo", headers=auth(customer)),
    }.items()


def test_every_resource_reads_the_authorization_header_alike(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # One test for all the headers: the tokens cost more than the requests.
    customer = tokens_for(ana, vendor, "openid profile.email:read")["access_token"]
    feed = feed_token(vendor)
    for header, reading in HEADERS:
        _check(_answers(app, vendor, header, customer, feed), header, reading)


def _check(answers: Any, header: str, reading: str) -> None:
    for name, r in answers:
        path = name.removeprefix("routed ")
        if reading == "token":
            assert r.status_code == 200, (header, name, r.text)
            continue
        assert r.status_code == 401, (header, name, r.text)
        if path == "/oauth/userinfo":
            # OIDC Core 5.3.3: the error in the challenge and the body.
            if reading == "none":
                assert r.headers["www-authenticate"] == BARE
                assert r.json() == {}
            else:
                description = "the access token is not active"
                assert r.headers["www-authenticate"] == (
                    f'{INVALID}, error_description="{description}"'
                )
                assert r.json() == {"error": "invalid_token", "error_description": description}
            continue
        assert r.headers["content-type"] == "application/problem+json", (header, name)
        if reading == "none":
            assert r.headers["www-authenticate"] == BARE, (header, name)
            assert r.json() == _problem(path, "Send an access token as Authorization: Bearer."), (
                header,
                name,
            )
        else:
            assert r.headers["www-authenticate"] == INVALID, (header, name)
            assert r.json() == _problem(path, "The access token is not active."), (header, name)
