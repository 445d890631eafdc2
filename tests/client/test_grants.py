"""Grants given on the real consent page, then seen and changed through
the SDK; the access log after a vendor read; the export; and one
customer's client kept out of another's data."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from client import AuditReceipt, NewEvent, Profile, VRMClient, VRMError
from tests.client.conftest import LoggedIn, consent
from tests.liveserver import LiveServer

SCOPES = "profile:read preferences:read"
VISITED = datetime(2026, 11, 2, 10, tzinfo=UTC)
# A receipt needs a signed checkpoint covering its entry; the served store
# signs one every two seconds (VRM_AUDIT_CHECKPOINT_SECONDS).
CHECKPOINT_WAIT = 30.0


def _vendor_reads(server: LiveServer, token: str) -> httpx.Response:
    r = httpx.get(f"{server.url}/v1/data", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r


def test_grant_from_the_consent_page_is_listed_and_shown(
    server: LiveServer, logged_in: LoggedIn
) -> None:
    given = consent(server, logged_in.customer, SCOPES)
    grants = logged_in.sdk.grants()
    assert [g.id for g in grants] == [given.grant_id]
    grant = logged_in.sdk.grant(given.grant_id)
    assert grant == grants[0]
    assert (grant.status, sorted(grant.scopes), grant.vendor.name) == (
        "active",
        sorted(SCOPES.split()),
        "SDK Tests",
    )
    assert [c.kind for c in grant.changes] == ["granted"]
    receipt = logged_in.sdk.grant_receipt(given.grant_id)
    assert receipt.count(".") == 2


def test_narrow_shorten_and_revoke_a_grant(server: LiveServer, logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    given = consent(server, logged_in.customer, SCOPES)
    narrowed = sdk.narrow_grant(given.grant_id, ["preferences:read"])
    assert narrowed.scopes == ["preferences:read"]
    assert "profile" not in _vendor_reads(server, given.access_token).json()
    sooner = narrowed.expires_at - timedelta(days=1)
    shortened = sdk.shorten_grant(given.grant_id, sooner)
    assert shortened.expires_at == sooner
    sdk.revoke_grant(given.grant_id)
    revoked = sdk.grant(given.grant_id)
    assert (revoked.status, revoked.revoked_by) == ("revoked", "customer")
    assert [c.kind for c in revoked.changes] == ["granted", "narrowed", "shortened", "revoked"]
    r = httpx.get(
        f"{server.url}/v1/data",
        headers={"Authorization": f"Bearer {given.access_token}"},
        timeout=10,
    )
    assert r.status_code == 401, r.text


def test_widening_a_grant_is_422(server: LiveServer, logged_in: LoggedIn) -> None:
    given = consent(server, logged_in.customer, "preferences:read")
    with pytest.raises(VRMError) as refused:
        logged_in.sdk.narrow_grant(given.grant_id, ["preferences:read", "history:read"])
    assert (refused.value.status, refused.value.type) == (422, "urn:vrm:problem:validation")


def test_access_log_shows_the_vendor_read_with_a_receipt(
    server: LiveServer, logged_in: LoggedIn
) -> None:
    sdk = logged_in.sdk
    sdk.replace_profile(Profile(given_name="Ada"))
    given = consent(server, logged_in.customer, SCOPES)
    _vendor_reads(server, given.access_token)
    reads = list(sdk.access_log(type="data.read"))
    assert len(reads) == 1
    entry = reads[0].entry
    assert (entry["type"], entry["vendor"], entry["grant"]) == (
        "data.read",
        server.vendor.client_id,
        given.grant_id,
    )
    everything = list(sdk.access_log(page_size=1))
    assert [e.index for e in everything] == sorted((e.index for e in everything), reverse=True)
    assert {e.entry["type"] for e in everything} >= {"consent.granted", "data.read"}
    receipt = _receipt(sdk, reads[0].index)
    assert (receipt.index, receipt.personal["customer_id"]) == (reads[0].index, sdk.me().id)


def _receipt(sdk: VRMClient, index: int) -> AuditReceipt:
    """The entry's receipt once a checkpoint covers it (409 before)."""
    deadline = time.monotonic() + CHECKPOINT_WAIT
    while True:
        try:
            return sdk.access_receipt(index)
        except VRMError as error:
            if error.status != 409 or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def test_export_holds_what_was_written(server: LiveServer, logged_in: LoggedIn) -> None:
    sdk = logged_in.sdk
    sdk.replace_profile(Profile(given_name="Ada"))
    event = sdk.add_event(NewEvent(vendor="Lello", type="visit", occurred_at=VISITED))
    given = consent(server, logged_in.customer, SCOPES)
    exported = sdk.export()
    assert (exported["schema"], exported["schema_version"]) == ("urn:vrm:export", 3)
    assert exported["account"]["email"] == logged_in.customer.email
    assert exported["profile"]["given_name"] == "Ada"
    assert [e["id"] for e in exported["history"]] == [event.id]
    assert [g["id"] for g in exported["grants"]] == [given.grant_id]
    assert sdk.export_schema()["$id"] == "urn:vrm:export:3"


def test_one_customer_cannot_reach_another_s_data(server: LiveServer, logged_in: LoggedIn) -> None:
    given = consent(server, logged_in.customer, SCOPES)
    event = logged_in.sdk.add_event(NewEvent(vendor="Lello", type="visit", occurred_at=VISITED))
    stranger = server.new_customer("stranger")
    with VRMClient(server.url) as other:
        other.log_in(stranger.email, stranger.password)
        for attempt in (
            lambda: other.grant(given.grant_id),
            lambda: other.revoke_grant(given.grant_id),
            lambda: other.event(event.id),
            lambda: other.label_event(event.id, ["private"]),
        ):
            with pytest.raises(VRMError) as refused:
                attempt()
            assert refused.value.status == 404
        assert other.grants() == []
        assert list(other.history()) == []
    assert logged_in.sdk.grant(given.grant_id).status == "active"
    assert logged_in.sdk.event(event.id).labels == []
