"""How the SDK turns answers and transport failures into VRMError, on
httpx.MockTransport: the cases the served store does not give on demand
(a proxy's HTML error page, a refused connection)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from client import AsyncVRMClient, VRMClient, VRMError, VRMTransportError

PASSWORD = "correct horse battery staple"
BASE = "http://store.test"


def test_problem_details_are_kept_member_for_member() -> None:
    problem = {
        "type": "urn:vrm:problem:too-many-requests",
        "title": "Too many requests",
        "status": 429,
        "detail": "Wait before trying again.",
        "instance": "/api/v1/session",
        "retry_after": 60,
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json=problem, headers={"Content-Type": "application/problem+json"}
        )

    with VRMClient(BASE, transport=httpx.MockTransport(answer)) as sdk:
        with pytest.raises(VRMError) as refused:
            sdk.log_in("a@example.org", PASSWORD)
    error = refused.value
    assert (error.type, error.title, error.status, error.detail, error.instance) == (
        "urn:vrm:problem:too-many-requests",
        "Too many requests",
        429,
        "Wait before trying again.",
        "/api/v1/session",
    )
    assert error.extra == {"retry_after": 60}
    assert str(error) == "429 Too many requests: Wait before trying again."


def test_an_answer_that_is_not_problem_details_is_about_blank() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    with VRMClient(BASE, transport=httpx.MockTransport(answer)) as sdk:
        with pytest.raises(VRMError) as refused:
            sdk.me()
    error = refused.value
    assert (error.type, error.title, error.status, error.detail, error.extra) == (
        "about:blank",
        "Bad Gateway",
        502,
        None,
        {},
    )


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


def test_a_refused_connection_is_one_line_without_the_password() -> None:
    with VRMClient(BASE, transport=httpx.MockTransport(_refuse)) as sdk:
        with pytest.raises(VRMTransportError) as failed:
            sdk.log_in("a@example.org", PASSWORD)
    message = str(failed.value)
    assert message == (
        "POST http://store.test/api/v1/session failed: [Errno 111] Connection refused"
    )
    assert failed.value.status is None
    assert isinstance(failed.value.__cause__, httpx.ConnectError)


def test_the_async_client_wraps_transport_failures_alike() -> None:
    async def scenario() -> VRMTransportError:
        async with AsyncVRMClient(BASE, transport=httpx.MockTransport(_refuse)) as sdk:
            try:
                await sdk.delete_account(PASSWORD)
            except VRMTransportError as error:
                return error
        raise AssertionError("no error")

    error = asyncio.run(scenario())
    assert str(error) == "DELETE http://store.test/api/v1/me failed: [Errno 111] Connection refused"


def test_writes_are_json_and_patches_merge_patch() -> None:
    seen: list[tuple[str, str, str | None, str | None, bytes]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(
            (
                request.method,
                request.url.path,
                request.headers.get("content-type"),
                request.headers.get("if-match"),
                request.content,
            )
        )
        return httpx.Response(200, json={}, headers={"ETag": '"1-a"'})

    with VRMClient(BASE, transport=httpx.MockTransport(answer)) as sdk:
        patched = sdk.patch_profile({"phone": None}, if_match='"0-z"')
    assert seen == [
        (
            "PATCH",
            "/api/v1/me/profile",
            "application/merge-patch+json",
            '"0-z"',
            b'{"phone": null}',
        )
    ]
    assert patched.etag == '"1-a"'


def test_an_answer_the_sdk_cannot_read_is_a_vrm_error_without_its_values() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "acc_1", "email": "secret@example.org"})

    with VRMClient(BASE, transport=httpx.MockTransport(answer)) as sdk:
        with pytest.raises(VRMError) as failed:
            sdk.me()
    assert str(failed.value) == (
        "200 The answer to GET /api/v1/me is not what the SDK expects: "
        "1 validation error for Account"
    )
