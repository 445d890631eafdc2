"""VRMClient.export and AsyncVRMClient.export with ``on_progress``, against
httpx.MockTransport: the same document as without, the bytes reported as
they arrive, a refusal still the server's problem details."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from client import AsyncVRMClient, VRMClient, VRMError

BASE = "https://store.example"


def _exporting(request: httpx.Request) -> httpx.Response:
    body = json.dumps({"profile": {"given_name": "Ada"}, "pad": "x" * 100_000}).encode()
    return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


def test_export_reports_its_progress_and_reads_the_same_document() -> None:
    seen: list[tuple[int, int | None]] = []
    with VRMClient(BASE, transport=httpx.MockTransport(_exporting)) as sdk:
        plain = sdk.export()
        reported = sdk.export(on_progress=lambda got, total: seen.append((got, total)))
    assert reported == plain
    assert seen
    assert seen[-1][0] == seen[-1][1] == len(json.dumps(plain).encode())
    assert [got for got, _ in seen] == sorted(got for got, _ in seen)


def test_export_progress_in_the_async_client_too() -> None:
    seen: list[tuple[int, int | None]] = []

    async def scenario() -> dict[str, object]:
        async with AsyncVRMClient(BASE, transport=httpx.MockTransport(_exporting)) as sdk:
            return await sdk.export(on_progress=lambda got, total: seen.append((got, total)))

    document = asyncio.run(scenario())
    assert document["profile"] == {"given_name": "Ada"}
    assert seen[-1][0] == seen[-1][1]


def test_a_refused_export_with_progress_is_the_servers_problem() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={
                "type": "urn:vrm:problem:invalid-token",
                "title": "Unauthenticated",
                "status": 401,
            },
            headers={"Content-Type": "application/problem+json"},
        )

    with (
        VRMClient(BASE, transport=httpx.MockTransport(refuse)) as sdk,
        pytest.raises(VRMError) as raised,
    ):
        sdk.export(on_progress=lambda got, total: None)
    assert (raised.value.status, raised.value.title) == (401, "Unauthenticated")
