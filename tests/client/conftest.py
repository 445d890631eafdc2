"""One served store for all the SDK tests (a start costs seconds; each test
has customers of its own, so they do not meet),
and the steps they share: a fresh customer logged in through the SDK, and
consent given on the real consent page as a browser gives it."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from client import VRMClient
from tests.liveserver import Browser, Customer, LiveServer, live_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("sdk") / "var", vendor_name="SDK Tests") as served:
        yield served


@dataclass(frozen=True)
class LoggedIn:
    customer: Customer
    sdk: VRMClient


@pytest.fixture
def logged_in(server: LiveServer) -> Iterator[LoggedIn]:
    """A customer of their own, signed up and logged in through the SDK."""
    customer = server.new_customer("sdk")
    with VRMClient(server.url) as sdk:
        sdk.log_in(customer.email, customer.password)
        yield LoggedIn(customer, sdk)


@dataclass(frozen=True)
class Consented:
    grant_id: str
    access_token: str


def consent(server: LiveServer, customer: Customer, scope: str) -> Consented:
    """The customer allows ``scope`` on the consent page (logging in on the
    login page, in a browser of their own); the vendor swaps the code for a
    token, as tests/connectors/test_listen_live.py's ``_consent`` does."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": server.vendor.client_id,
        "redirect_uri": server.vendor.redirect_uri,
        "scope": scope,
        "state": "s",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        "purpose": "dpv:ServiceProvision",
    }
    browser = Browser(server, customer)
    try:
        location = browser.authorize(f"{server.url}/oauth/authorize?{urlencode(query)}")
    finally:
        browser.close()
    code = parse_qs(urlsplit(location).query)["code"][0]
    r = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": server.vendor.redirect_uri,
            "code_verifier": verifier,
        },
        auth=(server.vendor.client_id, server.vendor.client_secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    token = r.json()
    return Consented(grant_id=token["grant_id"], access_token=token["access_token"])
