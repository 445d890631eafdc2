"""AsyncVRMClient against the served store: the same requests as the
blocking client (both send client/calls.py), so a representative few."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from client import AsyncVRMClient, NewEvent, Profile, VRMError
from tests.client.conftest import consent
from tests.liveserver import LiveServer

START = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def test_async_client_logs_in_writes_pages_and_logs_out(server: LiveServer) -> None:
    customer = server.new_customer("async")

    async def scenario() -> None:
        async with AsyncVRMClient(server.url) as sdk:
            logged = await sdk.log_in(customer.email, customer.password)
            me = await sdk.me()
            assert (me.id, me.email, me.created_at) == (logged.id, logged.email, logged.created_at)
            written = await sdk.replace_profile(Profile(given_name="Grace"))
            assert (await sdk.profile()) == written
            added = [
                await sdk.add_event(
                    NewEvent(vendor="Lello", type="visit", occurred_at=START + timedelta(days=n))
                )
                for n in range(5)
            ]
            listed = [e.id async for e in sdk.history(page_size=2)]
            assert listed == [e.id for e in reversed(added)]
            labelled = await sdk.label_event(added[0].id, ["not_for_me"], if_match=added[0].etag)
            assert labelled.labels == ["not_for_me"]
            await sdk.log_out()
            with pytest.raises(VRMError) as refused:
                await sdk.profile()
            assert refused.value.status == 401

    asyncio.run(scenario())


def test_async_client_revokes_a_grant_and_reads_the_log(server: LiveServer) -> None:
    customer = server.new_customer("async")
    given = consent(server, customer, "preferences:read")

    async def scenario() -> None:
        async with AsyncVRMClient(server.url) as sdk:
            await sdk.log_in(customer.email, customer.password)
            assert [g.id for g in await sdk.grants()] == [given.grant_id]
            await sdk.revoke_grant(given.grant_id)
            assert (await sdk.grant(given.grant_id)).status == "revoked"
            kinds = [e.entry["type"] async for e in sdk.access_log(type="consent", page_size=1)]
            assert kinds == ["consent.revoked", "consent.granted"]
            with pytest.raises(VRMError) as refused:
                await sdk.grant("grt_does_not_exist")
            assert (refused.value.status, refused.value.type) == (
                404,
                "urn:vrm:problem:not-found",
            )

    asyncio.run(scenario())
