"""One customer's lost key stops nobody else's data reaching a vendor.

With ana's root key gone, the feed goes on past her records (each replaced
by an ``unreadable`` item without data) and tells the operator; her reads
on /v1/data and userinfo fail with a clear problem while bob's succeed.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

import pytest
from fastapi import FastAPI

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer, log_in
from tests.vendor_api.helpers import (
    PREFERENCES,
    PROFILE,
    add_event,
    feed_token,
    put,
    read,
    read_feed,
)
from tests.vrm.test_key_faults import FAULTS, _break
from vrm.settings import Settings

KEY_UNAVAILABLE = "urn:vrm:problem:key-unavailable"
ROOT_KEY_GONE = "the customer's root key is gone (erased or missing)"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # No data key cache: a lost key shows at once, as after a restart.
    # Server custody: the key lost is a root key file in the key store,
    # which a customer-held root key never is.
    return settings.model_copy(update={"key_cache_seconds": 0.0, "key_custody": "server"})


def _lose_key(settings: Settings, person: Person) -> None:
    shutil.rmtree(settings.key_dir_resolved / "customers" / person.id)


def _unreadable(item: dict[str, Any], problem: str) -> dict[str, Any]:
    """The item the feed sends in place of one it cannot read."""
    head = {k: item[k] for k in ("id", "subject", "grant_id")}
    replaced = {**head, "type": "unreadable", "problem": problem}
    if item["type"] == "snapshot":
        return {**replaced, "skipped": "snapshot"}
    return {**replaced, "skipped": "upsert", "category": item["category"]}


@pytest.fixture
def granted(
    ana_profile: Person, bob: Person, vendor: Vendor
) -> tuple[dict[str, Any], dict[str, Any]]:
    put(bob, "profile", {**PROFILE, "given_name": "Bob", "email": "bob.contact@example.net"})
    ana_t = tokens_for(ana_profile, vendor, "openid profile:read history:read")
    bob_t = tokens_for(bob, vendor, "openid profile:read history:read")
    # Changes after the snapshots, interleaved: ana's, bob's, ana's, bob's.
    add_event(ana_profile, occurred_at="2026-11-01T10:00:00Z", notes="ana's")
    add_event(bob, occurred_at="2026-11-02T10:00:00Z", notes="bob's")
    put(ana_profile, "preferences", PREFERENCES)
    put(bob, "profile", {**PROFILE, "given_name": "Robert", "email": "bob.contact@example.net"})
    return ana_t, bob_t


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_key_replaces_that_customers_feed_items_and_the_feed_goes_on(
    app: FastAPI,
    settings: Settings,
    ana_profile: Person,
    bob: Person,
    vendor: Vendor,
    granted: tuple[dict[str, Any], dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    ana_t, _ = granted
    token = feed_token(vendor)
    whole, _ = read_feed(vendor, token)
    ana_subject = read(vendor, ana_t["access_token"]).json()["subject"]
    assert [(i["type"], i["subject"] == ana_subject) for i in whole] == [
        ("snapshot", True),
        ("snapshot", False),
        ("upsert", True),
        ("upsert", False),
        ("upsert", False),
    ]

    key = settings.key_dir_resolved / "customers" / ana_profile.id / "1.key"
    _break(key, fault, settings.key_dir_resolved / "customers" / bob.id / "1.key")
    problem, slug = (
        ("urn:vrm:problem:integrity", "integrity")
        if fault == "another's"
        else (KEY_UNAVAILABLE, "key-unavailable")
    )
    caplog.set_level(logging.INFO)
    # One item a page: the page holding ana's item must not stop the rest.
    items, cursors = read_feed(vendor, token, limit=1)

    assert items == [_unreadable(i, problem) if i["subject"] == ana_subject else i for i in whole]
    # One item on every page: a row the vendor gets nothing of takes no place.
    assert len(cursors) == len(whole)
    told = [r.getMessage() for r in caplog.records if r.name == "vrm.vendor_api.feed_items"]
    line = (
        f"feed: a record of customer {ana_profile.id} cannot be read ({slug}); "
        f"vendor {vendor.client_id} got an unreadable item"
    )
    assert told == [line, line]
    logged = " ".join(r.getMessage() for r in caplog.records)
    for personal in (ana_profile.email, PROFILE["email"], PROFILE["given_name"], "ana's"):
        assert personal not in logged


@pytest.mark.parametrize("fault", FAULTS)
def test_a_page_unwrapping_its_customers_keys_at_once_leaves_a_broken_one_to_its_items(
    app: FastAPI,
    settings: Settings,
    ana_profile: Person,
    bob: Person,
    vendor: Vendor,
    granted: tuple[dict[str, Any], dict[str, Any]],
    fault: str,
) -> None:
    # With the data key cache on, a page unwraps every key its customers
    # need before reading any (Vault.remember_keys): ana's broken one must
    # not stop bob's, nor be served from anywhere.
    vault = app.state.vault
    vault.cache_seconds = 60.0
    ana_t, _ = granted
    token = feed_token(vendor)
    whole, _ = read_feed(vendor, token)
    ana_subject = read(vendor, ana_t["access_token"]).json()["subject"]
    key = settings.key_dir_resolved / "customers" / ana_profile.id / "1.key"
    _break(key, fault, settings.key_dir_resolved / "customers" / bob.id / "1.key")
    vault._cache.clear()  # as after a restart: nothing unwrapped before the fault
    vault.derived.clear()
    problem = "urn:vrm:problem:integrity" if fault == "another's" else KEY_UNAVAILABLE

    items, _ = read_feed(vendor, token)

    assert items == [_unreadable(i, problem) if i["subject"] == ana_subject else i for i in whole]
    assert any(i["subject"] != ana_subject for i in items)


def test_a_lost_key_fails_that_customers_data_reads_alone(
    app: FastAPI,
    settings: Settings,
    ana_profile: Person,
    vendor: Vendor,
    granted: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ana_t, bob_t = granted
    _lose_key(settings, ana_profile)
    for path in ("/v1/data", "/v1/data/profile", "/v1/data/history"):
        r = read(vendor, ana_t["access_token"], path)
        assert_problem(r, 500, "key-unavailable", detail=ROOT_KEY_GONE, instance=path)
        r = read(vendor, bob_t["access_token"], path)
        assert r.status_code == 200, r.text


def test_a_lost_key_fails_that_customers_userinfo_alone(
    app: FastAPI,
    settings: Settings,
    ana_profile: Person,
    vendor: Vendor,
    granted: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ana_t, bob_t = granted
    _lose_key(settings, ana_profile)
    r = vendor.client.get("/oauth/userinfo", headers=bearer(ana_t["access_token"]))
    assert_problem(r, 500, "key-unavailable", detail=ROOT_KEY_GONE, instance="/oauth/userinfo")
    r = vendor.client.get("/oauth/userinfo", headers=bearer(bob_t["access_token"]))
    assert r.status_code == 200, r.text
    assert r.json()["given_name"] == "Robert"


def test_the_customer_logging_in_is_told_of_the_key_not_of_a_wrong_password(
    app: FastAPI, settings: Settings, ana_profile: Person, bob: Person
) -> None:
    # The session answer carries the login email, sealed under the lost key.
    _lose_key(settings, ana_profile)
    r = log_in(ana_profile.client, ana_profile.email, ana_profile.password)
    assert_problem(r, 500, "key-unavailable", detail=ROOT_KEY_GONE, instance="/api/v1/session")
    r = log_in(bob.client, bob.email, bob.password)
    assert r.status_code == 200, r.text
