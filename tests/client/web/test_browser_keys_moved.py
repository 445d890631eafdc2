"""The log-in that moves a customer's root key to them, in a real browser.

A store first served with ``VRM_KEY_CUSTODY=server`` signs a customer up
(no recovery key: the server holds their root key), and is stopped; the
operator serves the same data directory again with
``VRM_KEY_CUSTODY=customer`` (tests/liveserver.py, ``restarted``). Debian's
Chromium, driven by playwright-core (tests/client/web/browser/keys_moved.mjs,
with the packages of tests/consent/browser), logs the customer in through
/login: the answer shows the recovery key once (keys_moved.html), checked
by axe-core for WCAG 2.0, 2.1 and 2.2 at A and AA at a phone's and a
desktop's width and saved under ``$VRM_SCREENSHOTS/keys-moved`` (default
``var/screenshots/keys-moved``). The customer goes on, goes back and
reloads, then uses the key on /recover to set a new password and logs in
with it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.liveserver import PASSWORD, LiveServer, live_server, restarted
from tests.nodejs import browser_node, run_browser_script

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / "tests" / "consent" / "browser"
SCRIPT = Path(__file__).resolve().parent / "browser" / "keys_moved.mjs"
EMAIL = "web-keys-moved@example.org"
NEW_PASSWORD = "a different horse battery"
NODE_TIMEOUT = 60
KEY = re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{4}){7}")


def screenshots_dir() -> Path:
    base = os.environ.get("VRM_SCREENSHOTS")
    return (Path(base) if base else ROOT / "var" / "screenshots") / "keys-moved"


@pytest.fixture(scope="module")
def node() -> str:
    return browser_node(PACKAGES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The customer signed up under server custody; the same store served
    again under customer custody."""
    with live_server(
        tmp_path_factory.mktemp("web-keys-moved"),
        vendor_name="Keys Moved Tests",
        settings={"VRM_KEY_CUSTODY": "server"},
    ) as before:
        r = httpx.post(
            f"{before.url}/api/v1/accounts",
            json={"email": EMAIL, "password": PASSWORD},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        # The server holds this customer's root key: there is no key to show.
        assert r.json()["recovery_key"] is None, r.text
    with restarted(before, {"VRM_KEY_CUSTODY": "customer"}) as after:
        yield after


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
        email=EMAIL,
        password=PASSWORD,
        new_password=NEW_PASSWORD,
        out_dir=str(out),
    )


def _seen(run: dict[str, Any], key: str) -> Any:
    outcome = run["moved"]
    assert key in outcome, (
        f"the scenario stopped before {key!r}:\n{json.dumps(outcome, indent=1)[:6000]}"
    )
    return outcome[key]


def test_the_recovery_key_page_is_accessible_and_saved_at_both_widths(
    run: dict[str, Any],
) -> None:
    pages = _seen(run, "pages")
    assert [(p["step"], p["path"], p["title"]) for p in pages] == [
        ("keys-moved", "/login", "Your recovery key")
    ]
    (page,) = pages
    assert page["violations"] == []
    assert page["phone_passes"] > 5
    assert page["desktop_passes"] > 5
    assert page["phone_scroll_width"] <= 390
    for width in ("phone", "desktop"):
        shot = Path(page[f"{width}_screenshot"])
        assert shot.parent == screenshots_dir()
        assert shot.stat().st_size > 0
    assert _seen(run, "csp_violations") == []
    assert _seen(run, "page_errors") == []


def test_the_log_in_that_moves_the_keys_shows_the_recovery_key_once_unstored(
    run: dict[str, Any],
) -> None:
    assert _seen(run, "login_url").endswith("/login?next=/data/history")
    assert _seen(run, "answer") == {"status": 200, "cache_control": "no-store"}
    shown = _seen(run, "moved_key")
    assert KEY.fullmatch(shown["key"]), shown
    assert shown["heading"] == "Your recovery key"
    assert shown["times"] == 1
    text = _seen(run, "moved_text")
    assert "this server no longer holds a key that opens it" in text
    assert "This is the only time the key is shown." in text


def test_continuing_goes_on_to_the_page_asked_for_logged_in(run: dict[str, Any]) -> None:
    went_on = _seen(run, "went_on")
    assert went_on["path"] == "/data/history"
    assert went_on["nav"].endswith("Log out")


def test_going_back_and_reloading_do_not_show_the_key_again(run: dict[str, Any]) -> None:
    key = _seen(run, "moved_key")["key"]
    back = _seen(run, "back")
    # no-store: Chromium kept no copy of the answer to show, and will not
    # post the form again unasked.
    assert back["error"] == "page.goBack: net::ERR_CACHE_MISS"
    assert key not in back["text"]
    # Reloading posts the login again, whose one-time form token is spent.
    reload = _seen(run, "reload")
    assert reload["url"].endswith("/login")
    assert reload["error"] is None
    assert "This form expired. Please log in again." in reload["text"]
    assert key not in reload["text"]
    # Logging in again: the keys moved once, so it goes straight on.
    assert key not in _seen(run, "again_text")
    refused = [(m["type"], m["text"], m["url"].split("/", 3)[3]) for m in _seen(run, "console")]
    assert refused == [
        (
            "error",
            "Failed to load resource: the server responded with a status of 400 (Bad Request)",
            "login",
        )
    ]


def test_the_key_shown_sets_a_new_password_that_logs_in(
    run: dict[str, Any], server: LiveServer
) -> None:
    moved, new = _seen(run, "moved_key"), _seen(run, "new_key")
    assert KEY.fullmatch(new["key"]), new
    assert new["key"] != moved["key"]
    assert new["heading"] == "Your new recovery key"
    assert new["times"] == 1
    assert _seen(run, "logged_in_nav").endswith("Log out")
    r = httpx.post(
        f"{server.url}/api/v1/session", json={"email": EMAIL, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 401, r.text


def test_every_post_is_answered_as_the_customer_expects(run: dict[str, Any]) -> None:
    assert [t for t in _seen(run, "trail") if t.startswith("POST ")] == [
        # The key is shown on the answer itself: there is no page to redirect to.
        "POST /login 200",
        "POST /login 400",
        "POST /login 303",
        "POST /logout 303",
        "POST /recover 200",
        "POST /login 303",
    ]
