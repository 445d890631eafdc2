"""The consent page shows what the vendor would receive: the customer's own
value beside each field asked for (cut where long), how much of the history
(never what is private), whether the vendor registered itself, and the
shortest duration offered as the default."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fastapi import FastAPI

from consent.preview import LONGEST, masked
from tests.conftest import Person
from tests.consent.conftest import Vendor, register_vendor, start

PROFILE = "/api/v1/me/profile"
HISTORY = "/api/v1/me/history"
EVENT = {
    "vendor": "Corner Bookshop",
    "type": "purchase",
    "occurred_at": "2026-03-14T16:05:00Z",
    "items": [{"name": "Atlas", "sku": None, "quantity": 1, "amount": "12.00", "labels": []}],
    "amount": "12.00",
    "currency": "EUR",
    "channel": "store",
    "labels": [],
}


def _shown(html: str) -> dict[str, str]:
    """Each checkbox's scope and the words it is described by."""
    values = {
        m["id"]: unescape(re.sub(r"<[^>]+>", "", m["text"])).strip()
        for m in re.finditer(r'<p class="value" id="(?P<id>[^"]+)">(?P<text>.*?)</p>', html)
    }
    boxes = re.finditer(r'value="(?P<scope>[^"]+)"[^>]*aria-describedby="(?P<id>[^"]+)"', html)
    return {unescape(m["scope"]): values[m["id"]] for m in boxes}


def _put_profile(person: Person, **fields: object) -> None:
    r = person.client.put(PROFILE, json=fields)
    assert r.status_code == 200, r.text


def test_each_field_shows_the_customers_own_value(ana: Person, bob: Person, vendor: Vendor) -> None:
    _put_profile(ana, email="ana@example.org", given_name="Ana")
    _put_profile(bob, email="bob@example.org", phone="+351912345678")
    page = start(ana, vendor, "profile.email:read profile.phone:read").page
    assert page.status_code == 200, page.text
    assert _shown(page.text) == {
        "profile.email:read": "They would receive: ana@example.org",
        "profile.phone:read": "They would receive: not filled in",
    }
    assert "bob@example.org" not in page.text
    assert "+351912345678" not in page.text


def test_a_long_value_is_cut_and_a_whole_category_lists_what_is_filled(
    ana: Person, vendor: Vendor
) -> None:
    long_name = "Maria " + "de " * 30 + "Sousa"
    _put_profile(ana, given_name=long_name, email="ana@example.org")
    page = start(ana, vendor, "profile:read").page
    (words,) = _shown(page.text).values()
    assert words.startswith("They would receive: given name: Maria de de")
    assert "email: ana@example.org" in words
    assert long_name not in page.text
    assert "Sousa" not in page.text


def test_the_history_is_counted_without_what_is_private(ana: Person, vendor: Vendor) -> None:
    for labels in ([], [], ["private"]):
        r = ana.client.post(HISTORY, json={**EVENT, "labels": labels})
        assert r.status_code == 201, r.text
    page = start(ana, vendor, "history:read").page
    assert _shown(page.text) == {
        "history:read": "They would receive: 2 events (1 marked private, never shared)"
    }


def test_a_vendor_that_registered_itself_is_marked_unreviewed(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    reviewed = start(ana, vendor, "profile.email:read").page
    assert "Not reviewed" not in reviewed.text
    dynamic = register_vendor(app, name="Unknown Shop", registered_by="dynamic")
    page = start(ana, dynamic, "profile.email:read").page
    assert page.status_code == 200, page.text
    assert "Not reviewed." in page.text
    assert "Unknown Shop registered itself with this server" in page.text


def test_the_shortest_duration_is_the_default(ana: Person, vendor: Vendor) -> None:
    form = start(ana, vendor, "profile.email:read").form
    assert form is not None
    options = form.selects["duration_days"]
    assert len(options) > 1
    selected = re.findall(r'<option value="(\d+)" selected>', start(ana, vendor).page.text)
    assert selected == [min(options, key=int)]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "not filled in"),
        ("", "not filled in"),
        ("short", "short"),
        ("x" * LONGEST, "x" * LONGEST),
        ("x" * (LONGEST + 1), "x" * (LONGEST - 1) + "…"),
        ({"locality": "Porto", "country": "PT", "region": None}, "Porto, PT"),
        (True, "yes"),
    ],
)
def test_masked(value: object, shown: str) -> None:
    assert masked(value) == shown
