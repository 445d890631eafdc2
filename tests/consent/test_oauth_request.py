"""consent.oauth.requests.Request: Authlib's OAuth2Request, with parameters
from one place only, and its https check run once per origin."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc6749 import InsecureTransportError, OAuth2Request
from starlette.datastructures import Headers

from consent.oauth.requests import Request


@pytest.mark.parametrize(
    "uri",
    [
        "http://vendor.example/oauth/token",
        "http://127.0.0.1.example/oauth/token",
        "http://user@127.0.0.1.example/oauth/token?x=1",
        "ftp://127.0.0.1/oauth/token",
    ],
)
def test_a_url_that_is_neither_https_nor_loopback_is_refused(uri: str) -> None:
    for _ in range(2):  # the second time from the cache of origins
        with pytest.raises(InsecureTransportError):
            Request("POST", uri, Headers(), [])


@pytest.mark.parametrize(
    "uri",
    [
        "https://vrm.example/oauth/token",
        "https://vrm.example:8443/oauth/authorize?client_id=x",
        "http://127.0.0.1:8000/oauth/token",
        "http://localhost:8000/oauth/token",
        "http://[::1]:8000/oauth/token",
    ],
)
def test_https_and_loopback_urls_are_taken(uri: str) -> None:
    request = Request("POST", uri, Headers({"x-a": "1"}), [("grant_type", "refresh_token")])
    assert request.uri == uri
    assert request.method == "POST"
    assert request.headers["x-a"] == "1"
    assert request.form == {"grant_type": "refresh_token"}
    assert request.payload.grant_type == "refresh_token"


def test_a_request_starts_as_authlibs_own_does() -> None:
    """Every attribute OAuth2Request.__init__ sets is there, unset: a new
    one in a later Authlib is not missed."""
    theirs = vars(OAuth2Request("GET", "https://vrm.example/oauth/authorize"))
    ours = vars(Request("GET", "https://vrm.example/oauth/authorize", Headers(), []))
    assert set(theirs) <= set(ours)
    for name in set(theirs) - {"method", "uri", "headers", "payload"}:
        assert ours[name] == theirs[name], name
    first = Request("POST", "https://vrm.example/oauth/token", Headers(), [])
    first.client = object()
    assert Request("POST", "https://vrm.example/oauth/token", Headers(), []).client is None


def test_a_callback_outside_a_transaction_fails_loudly() -> None:
    """Authlib's callbacks find the database on the request (Request.tx);
    one handed a request no transaction was given to raises rather than
    reaching some other transaction."""
    request = Request("POST", "https://issuer.example/oauth/token", Headers(), [])
    with pytest.raises(RuntimeError, match="^an OAuth request handled outside a transaction$"):
        _ = request.tx
