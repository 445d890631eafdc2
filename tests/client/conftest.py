"""One served store for all the SDK tests (a start costs seconds; each test
has customers of its own, so they do not meet),
and the steps they share: a fresh customer logged in through the SDK, and
consent given on the real consent page as a browser gives it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from client import VRMClient
from tests.liveserver import Browser, Customer, LiveServer, grant_on_consent_page, live_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # vrm-me's device login polls every second, not every five (test_cli.py).
    with live_server(
        tmp_path_factory.mktemp("sdk") / "var",
        vendor_name="SDK Tests",
        settings={"VRM_DEVICE_POLL_INTERVAL_SECONDS": "1"},
    ) as served:
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
    token (tests/liveserver.py)."""
    browser = Browser(server, customer)
    try:
        token = grant_on_consent_page(server, browser, scope)
    finally:
        browser.close()
    return Consented(grant_id=token["grant_id"], access_token=token["access_token"])
