"""The connector's client of the store: 429 and 5xx are tried again,
waiting at least what Retry-After says; other answers are not; a store
that never answers is one line."""

from __future__ import annotations

import httpx
import pytest

from connectors.source import CursorExpired, pages
from connectors.store import ATTEMPTS, Store, StoreError

STORE = "https://store.example"


def _store(handler: object, waits: list[float]) -> Store:
    return Store(
        STORE,
        "vnd_x",
        "secret",
        transport=httpx.MockTransport(handler),
        sleep=waits.append,  # type: ignore[arg-type]
    )


def _api(answers: list[httpx.Response]) -> object:
    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(
                200, json={"issuer": STORE, "token_endpoint": f"{STORE}/oauth/token"}
            )
        if path == "/oauth/token":
            assert request.headers["authorization"].startswith("Basic ")
            return httpx.Response(
                200, json={"access_token": "t", "token_type": "Bearer", "expires_in": 600}
            )
        assert path == "/v1/feed"
        assert request.headers["authorization"] == "Bearer t"
        return answers.pop(0)

    return handle


def _page(more: bool = False) -> httpx.Response:
    return httpx.Response(200, json={"items": [{"id": "1"}], "next_cursor": "c1", "has_more": more})


def test_429_and_5xx_are_tried_again_honouring_retry_after() -> None:
    waits: list[float] = []
    answers = [
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503),
        _page(),
    ]
    store = _store(_api(answers), waits)
    [(items, cursor, more)] = list(pages(store, None))
    assert (items, cursor, more) == ([{"id": "1"}], "c1", False)
    assert len(waits) == 2
    assert waits[0] >= 7


def test_a_store_that_keeps_failing_gives_up_in_one_line() -> None:
    waits: list[float] = []
    store = _store(_api([httpx.Response(502)] * ATTEMPTS), waits)
    with pytest.raises(StoreError, match="the feed answered 502"):
        list(pages(store, None))
    assert len(waits) == ATTEMPTS - 1


def test_a_cursor_too_old_says_resync_and_a_400_is_not_retried() -> None:
    waits: list[float] = []
    with pytest.raises(CursorExpired, match="resync"):
        list(pages(_store(_api([httpx.Response(410)]), waits), "old"))
    with pytest.raises(StoreError, match="400"):
        list(pages(_store(_api([httpx.Response(400)]), waits), "forged"))
    assert waits == []


def test_no_answer_at_all_is_one_line() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    waits: list[float] = []
    with pytest.raises(StoreError, match=r"the store does not answer \(ConnectError\)"):
        _store(down, waits).metadata()


def test_the_connector_turns_dlt_s_usage_reports_off() -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RUNTIME__DLTHUB_TELEMETRY"}
    code = "import connectors.sync, dlt; print(dlt.config.get('runtime.dlthub_telemetry'))"
    ran = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert ran.stdout.strip().lower() == "false", ran.stderr
