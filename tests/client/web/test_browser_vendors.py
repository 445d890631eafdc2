"""A customer and a vendor in a real browser, each page checked by axe-core.

Debian's Chromium, headless, driven by playwright-core
(tests/client/web/browser/vendors.mjs, with the packages of
tests/consent/browser), against the real server in a subprocess
(tests/liveserver.py). The customer signs up and fills the profile, answers
the vendor's request on the consent page with the phone unticked, sees the
vendor and exactly what it sees, takes the email back, finds the reads in the
access history with their chart and a receipt, and revokes; the vendor's own
reads in between show each change take effect. Every page is checked for
WCAG 2.0, 2.1 and 2.2 at A and AA and saved at a phone's and a desktop's
width under ``$VRM_SCREENSHOTS/vendors`` (default ``var/screenshots/vendors``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.liveserver import PASSWORD, LiveServer, live_server
from tests.nodejs import browser_node, run_browser_script

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / "tests" / "consent" / "browser"
SCRIPT = Path(__file__).resolve().parent / "browser" / "vendors.mjs"
VENDOR = "Corner Bookshop"
SCOPE = "profile.given_name:read profile.email:read profile.phone:read history:read"
UNTICK = "Read your phone number"
EMAIL = "web-vendors@example.org"
NODE_TIMEOUT = 120
STEPS = [
    "consent",
    "vendors",
    "vendor",
    "sees",
    "access",
    "revoke",
    "revoked",
    "device",
    "device-done",
    "device-enter",
    "vendor-not-found",
    "event-not-found",
    "oauth-error",
]


def screenshots_dir() -> Path:
    base = os.environ.get("VRM_SCREENSHOTS")
    return (Path(base) if base else ROOT / "var" / "screenshots") / "vendors"


@pytest.fixture(scope="module")
def node() -> str:
    return browser_node(PACKAGES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("web-vendors"), vendor_name=VENDOR) as live:
        yield live


@pytest.fixture(scope="module")
def run(node: str, server: LiveServer) -> dict[str, Any]:
    out = screenshots_dir()
    shutil.rmtree(out, ignore_errors=True)
    return run_browser_script(
        node,
        SCRIPT,
        PACKAGES,
        timeout=NODE_TIMEOUT,
        issuer=server.url,
        client_id=server.vendor.client_id,
        client_secret=server.vendor.client_secret,
        redirect_uri=server.vendor.redirect_uri,
        vendor_name=VENDOR,
        scope=SCOPE,
        untick=UNTICK,
        email=EMAIL,
        password=PASSWORD,
        out_dir=str(out),
    )


def _seen(run: dict[str, Any], key: str) -> Any:
    outcome = run["vendors"]
    assert key in outcome, (
        f"the scenario stopped before {key!r}:\n{json.dumps(outcome, indent=1)[:6000]}"
    )
    return outcome[key]


def test_every_page_is_visited_accessible_and_saved_at_both_widths(run: dict[str, Any]) -> None:
    assert _seen(run, "error_pages") == [404, 404, 400]
    pages = _seen(run, "pages")
    assert [p["step"] for p in pages] == STEPS
    assert {p["step"]: p["violations"] for p in pages if p["violations"]} == {}
    for page in pages:
        assert page["phone_passes"] > 5, page["step"]
        assert page["desktop_passes"] > 5, page["step"]
        assert page["phone_scroll_width"] <= 390, page["step"]
        for width in ("phone", "desktop"):
            shot = Path(page[f"{width}_screenshot"])
            assert shot.parent == screenshots_dir()
            assert shot.stat().st_size > 0
    assert _seen(run, "csp_violations") == []
    assert _seen(run, "page_errors") == []


def test_the_consent_page_shows_the_values_and_defaults_to_the_shortest(
    run: dict[str, Any],
) -> None:
    values = _seen(run, "consent_values")
    assert "They would receive: Ana" in values
    assert "They would receive: ana.contact@example.org" in values
    assert "They would receive: +351 21 000 0000" in values
    assert "They would receive: 0 events" in values
    assert _seen(run, "consent_selected") == "1"


def test_the_vendor_gets_what_was_ticked_and_not_the_phone(run: dict[str, Any]) -> None:
    granted = _seen(run, "granted")
    assert "profile.phone:read" not in granted["scope"].split()
    first = _seen(run, "first_read")
    assert first["status"] == 200
    assert first["body"]["profile"] == {"given_name": "Ana", "email": "ana.contact@example.org"}


def test_what_this_vendor_sees_is_what_it_read(run: dict[str, Any]) -> None:
    assert _seen(run, "sees") == _seen(run, "first_read")["body"]
    text = _seen(run, "vendor_text").lower()
    assert "to provide the service you asked for" in text
    assert "read your phone number" not in text


def test_taking_the_email_back_takes_effect_on_the_vendors_next_read(
    run: dict[str, Any],
) -> None:
    assert _seen(run, "narrowed_status").startswith("Done:")
    after = _seen(run, "after_narrow")
    assert after["status"] == 200
    assert after["body"]["profile"] == {"given_name": "Ana"}


def test_the_reads_are_in_the_access_history_with_a_chart_and_a_receipt(
    run: dict[str, Any],
) -> None:
    text = _seen(run, "access_text")
    assert VENDOR in text
    assert _seen(run, "chart_titles") == [f"Reads of your data by {VENDOR}, per day"]
    (description,) = _seen(run, "chart_descriptions")
    assert re.match(r"2 reads from \d{4}-\d\d-\d\d to \d{4}-\d\d-\d\d;", description), description
    receipt = _seen(run, "receipt")
    assert {"index", "entry", "leaf_hash", "proof", "checkpoint", "salt"} <= set(receipt)
    assert _seen(run, "receipt_disposition").startswith("attachment;")


def test_revoking_ends_the_vendors_reads_at_once(run: dict[str, Any]) -> None:
    assert _seen(run, "after_revoke")["status"] == 401
    assert "revoked" in _seen(run, "revoked_text").lower()
    posts = [
        re.sub(r"/[0-9a-f]{32}", "/ID", t) for t in _seen(run, "trail") if t.startswith("POST ")
    ]
    assert posts == [
        # The sign-up's answer shows the recovery key (test_browser.py).
        "POST /signup 200",
        "POST /data/profile 303",
        "POST /oauth/authorize 303",
        "POST /vendors/ID/narrow 303",
        "POST /vendors/ID/revoke 303",
        "POST /device 303",
    ]


def test_the_device_page_logs_the_command_line_in(run: dict[str, Any]) -> None:
    device = _seen(run, "device")
    assert _seen(run, "device_code_shown") == device["user_code"]
    assert device["me_status"] == 200
    assert device["me"]["email"] == EMAIL
