"""The authorization server's JSON answers (consent.oauth.answers.JSONAnswer):
built by hand for speed, so checked here against what Starlette's
JSONResponse would send, and for the no-store rule (RFC 6749 5.1)."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

from consent.oauth.answers import JSONAnswer


def _headers(response: JSONAnswer | JSONResponse) -> dict[bytes, bytes]:
    names = [name for name, _ in response.raw_headers]
    assert len(names) == len(set(names)), names  # no header twice
    return dict(response.raw_headers)


def test_the_body_is_what_starlette_would_send() -> None:
    body = {"access_token": "vat_x", "expires_in": 3600, "note": "café", "details": [{"a": [1]}]}
    ours = JSONAnswer(body, 200, [("Content-Type", "application/json")])
    theirs = JSONResponse(body)
    assert ours.body == theirs.body
    assert json.loads(ours.body) == body
    assert _headers(ours)[b"content-length"] == str(len(ours.body)).encode()


def test_every_answer_says_no_store_whatever_it_was_given() -> None:
    for given in (
        [("Content-Type", "application/json")],
        [("Cache-Control", "max-age=3600"), ("Pragma", "cache")],
        {"Content-Type": "application/json", "cache-control": "public"},
        (),
    ):
        headers = _headers(JSONAnswer({"error": "invalid_grant"}, 400, given))
        assert headers[b"cache-control"] == b"no-store"
        assert headers[b"pragma"] == b"no-cache"
        assert headers[b"content-type"] == b"application/json"


def test_other_headers_are_kept() -> None:
    challenge = 'Basic error="invalid_client"'
    answer = JSONAnswer(
        {"error": "invalid_client"},
        401,
        [("Content-Type", "application/json"), ("WWW-Authenticate", challenge)],
    )
    assert answer.status_code == 401
    assert _headers(answer)[b"www-authenticate"] == challenge.encode()


def test_a_stale_content_length_is_not_passed_on() -> None:
    answer = JSONAnswer({"active": False}, 200, [("Content-Length", "999")])
    assert _headers(answer)[b"content-length"] == str(len(answer.body)).encode()
