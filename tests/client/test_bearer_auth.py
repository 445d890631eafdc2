"""client.BearerAuth and the device login's polling, against
httpx.MockTransport: what is sent, when the tokens are renewed, and what a
refusal says (never a token)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

import httpx
import pytest

from client import AsyncVRMClient, BearerAuth, DeviceCode, Tokens, VRMClient, VRMError
from client.device import finish_login

BASE = "https://store.example"
ME = {"id": "c1", "email": "ada@example.org", "created_at": "2026-12-07T10:00:00Z"}


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _tokens(n: int) -> dict[str, object]:
    return {"access_token": f"vat_{n}", "refresh_token": f"vrt_{n}", "expires_in": 600}


class Store:
    """A store that takes only the newest access token and rotates refresh tokens."""

    def __init__(self) -> None:
        self.current = 1
        self.seen: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = _form(request)
            self.seen.append(f"refresh {form['refresh_token']}")
            if form != {
                "grant_type": "refresh_token",
                "refresh_token": f"vrt_{self.current}",
                "client_id": "vrm-me",
            }:
                return httpx.Response(400, json={"error": "invalid_grant"})
            self.current += 1
            return httpx.Response(200, json=_tokens(self.current))
        self.seen.append(f"{request.url.path} {request.headers.get('authorization')}")
        if request.headers.get("authorization") != f"Bearer vat_{self.current}":
            return httpx.Response(401, json={"title": "Unauthenticated", "status": 401})
        return httpx.Response(200, json=ME)


def _client(store: Store, tokens: Tokens, saved: list[Tokens], now: float = 1000.0) -> VRMClient:
    auth = BearerAuth(
        tokens, token_url=f"{BASE}/oauth/token", on_refresh=saved.append, clock=lambda: now
    )
    return VRMClient(BASE, transport=httpx.MockTransport(store), auth=auth)


def test_the_access_token_is_sent_while_it_lasts() -> None:
    store, saved = Store(), []
    with _client(store, Tokens("vat_1", "vrt_1", 2000.0), saved) as sdk:
        assert sdk.me().email == "ada@example.org"
    assert store.seen == ["/api/v1/me Bearer vat_1"]
    assert saved == []


def test_a_token_about_to_run_out_is_renewed_first_and_handed_over() -> None:
    store, saved = Store(), []
    with _client(store, Tokens("vat_1", "vrt_1", 1010.0), saved) as sdk:
        sdk.me()
    assert store.seen == ["refresh vrt_1", "/api/v1/me Bearer vat_2"]
    assert saved == [Tokens("vat_2", "vrt_2", 1600.0)]


def test_a_401_renews_once_and_retries() -> None:
    store, saved = Store(), []
    store.current = 1
    with _client(store, Tokens("vat_0", "vrt_1", 2000.0), saved) as sdk:
        sdk.me()
    assert store.seen == ["/api/v1/me Bearer vat_0", "refresh vrt_1", "/api/v1/me Bearer vat_2"]


def test_a_refused_refresh_is_a_vrm_error_without_the_token() -> None:
    store, saved = Store(), []
    with (
        _client(store, Tokens("vat_9", "vrt_9", 10.0), saved) as sdk,
        pytest.raises(VRMError) as raised,
    ):
        sdk.me()
    assert raised.value.title == "invalid_grant"
    assert raised.value.status == 400
    assert "vrt_9" not in str(raised.value)
    assert saved == []


def test_polling_slows_down_when_told_and_stops_at_a_refusal() -> None:
    answers = iter(
        [
            httpx.Response(400, json={"error": "authorization_pending"}),
            httpx.Response(400, json={"error": "slow_down"}),
            httpx.Response(400, json={"error": "authorization_pending"}),
            httpx.Response(400, json={"error": "access_denied", "error_description": "no"}),
        ]
    )
    waits: list[float] = []
    code = DeviceCode("dc", "BCDF-GHJK", f"{BASE}/device", None, 600, 5)
    with pytest.raises(VRMError) as raised:
        finish_login(
            BASE,
            code,
            transport=httpx.MockTransport(lambda request: next(answers)),
            sleep=waits.append,
        )
    assert waits == [5, 5, 10, 10]
    assert str(raised.value) == "400 access_denied: no"


def test_polling_returns_the_tokens() -> None:
    sent: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(_form(request))
        return httpx.Response(200, content=json.dumps(_tokens(1)).encode())

    code = DeviceCode("dc", "BCDF-GHJK", f"{BASE}/device", None, 600, 5)
    got = finish_login(
        BASE, code, transport=httpx.MockTransport(answer), sleep=lambda s: None, clock=lambda: 0.0
    )
    assert got == Tokens("vat_1", "vrt_1", 600.0)
    assert sent == [
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": "dc",
            "client_id": "vrm-me",
        }
    ]


def test_the_async_client_renews_the_same_way() -> None:
    store, saved = Store(), []
    auth = BearerAuth(
        Tokens("vat_1", "vrt_1", 1010.0),
        token_url=f"{BASE}/oauth/token",
        on_refresh=saved.append,
        clock=lambda: 1000.0,
    )

    async def scenario() -> str:
        async with AsyncVRMClient(BASE, transport=httpx.MockTransport(store), auth=auth) as sdk:
            return (await sdk.me()).email

    assert asyncio.run(scenario()) == "ada@example.org"
    assert store.seen == ["refresh vrt_1", "/api/v1/me Bearer vat_2"]
    assert saved == [Tokens("vat_2", "vrt_2", 1600.0)]
