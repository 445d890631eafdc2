"""Customer-held keys in a real browser, each page checked by axe-core.

Debian's Chromium, headless, driven by playwright-core
(tests/client/web/browser/keys.mjs, with the packages of
tests/consent/browser), against the real server in a subprocess started
with ``VRM_KEY_CUSTODY=customer`` (tests/liveserver.py, as
tests/client/test_cli.py starts its second server). The customer signs up
and is shown the recovery key, logs out, mistypes the key on /recover, then
sets a new password with the right one and is shown the next key, logs in
with the new password, allows a vendor on the consent page and opens the
vendor's page. Every page is checked for WCAG 2.0, 2.1 and 2.2 at A and AA
and saved at a phone's and a desktop's width under ``$VRM_SCREENSHOTS/keys``
(default ``var/screenshots/keys``).
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

from tests.liveserver import PASSWORD, LiveServer, live_server
from tests.nodejs import browser_node, run_browser_script

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ROOT / "tests" / "consent" / "browser"
SCRIPT = Path(__file__).resolve().parent / "browser" / "keys.mjs"
VENDOR = "Key Holders' Bakery"
SCOPE = "profile.given_name:read history:read"
EMAIL = "web-keys@example.org"
NEW_PASSWORD = "a different horse battery"
NODE_TIMEOUT = 60
KEY = re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{4}){7}")
RECOVER_FORM = (
    "Email",
    "Recovery key",
    "New password",
    "New password again",
    "Set the new password",
)
STEPS = ["signup", "recovery-key", "recover", "recover-wrong", "new-key", "consent", "vendor"]
# What this server may read for a grant of SCOPE, in the words of both pages.
SERVER_READS = (
    "To serve the vendor while you are away, this server can read your given name and your"
    " whole history (the events you marked private too, which the vendor never sees) {ending}."
    " It cannot read the rest of your data, and once this ends it cannot read these either"
    " (unless another grant you keep shares them)."
)


def screenshots_dir() -> Path:
    base = os.environ.get("VRM_SCREENSHOTS")
    return (Path(base) if base else ROOT / "var" / "screenshots") / "keys"


@pytest.fixture(scope="module")
def node() -> str:
    return browser_node(PACKAGES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(
        tmp_path_factory.mktemp("web-keys"),
        vendor_name=VENDOR,
        settings={"VRM_KEY_CUSTODY": "customer"},
    ) as live:
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
        email=EMAIL,
        password=PASSWORD,
        new_password=NEW_PASSWORD,
        out_dir=str(out),
    )


def _seen(run: dict[str, Any], key: str) -> Any:
    outcome = run["keys"]
    assert key in outcome, (
        f"the scenario stopped before {key!r}:\n{json.dumps(outcome, indent=1)[:6000]}"
    )
    return outcome[key]


def test_every_page_is_visited_accessible_and_saved_at_both_widths(run: dict[str, Any]) -> None:
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


def test_the_sign_up_page_says_what_losing_both_means(run: dict[str, Any]) -> None:
    text = _seen(run, "signup_text")
    assert "After signing up you get a recovery key, shown once." in text
    assert "If you lose both your password and the recovery key, nobody can open your data" in text


def test_sign_up_shows_the_recovery_key_once_and_nowhere_after(run: dict[str, Any]) -> None:
    first = _seen(run, "first_key")
    assert KEY.fullmatch(first["key"]), first
    assert first["heading"] == "Your recovery key"
    assert first["times"] == 1
    assert first["key"] not in _seen(run, "home_text")
    assert "Log in" in _seen(run, "after_logout_nav")


def test_the_recovery_form_is_reached_from_the_login_page_in_reading_order(
    run: dict[str, Any],
) -> None:
    order = _seen(run, "recover_tab_order")
    assert order[0] == "Skip to main content"
    assert [name for name in order if name in RECOVER_FORM] == list(RECOVER_FORM)


def test_a_mistyped_recovery_key_is_refused_and_the_email_kept(run: dict[str, Any]) -> None:
    assert _seen(run, "wrong_alert") == "Email or recovery key is wrong."
    assert _seen(run, "wrong_email_kept") == EMAIL
    # Nothing the customer typed as a secret is sent back into the page.
    assert _seen(run, "wrong_key_kept") == ""
    refused = [(m["type"], m["text"], m["url"].split("/", 3)[3]) for m in _seen(run, "console")]
    assert refused == [
        (
            "error",
            "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
            "recover",
        )
    ]


def test_the_right_key_sets_the_password_and_shows_a_new_key_once(
    run: dict[str, Any], server: LiveServer
) -> None:
    first, new = _seen(run, "first_key"), _seen(run, "new_key")
    assert KEY.fullmatch(new["key"]), new
    assert new["key"] != first["key"]
    assert new["heading"] == "Your new recovery key"
    assert new["times"] == 1
    assert "The recovery key you used no longer works" in _seen(run, "new_key_text")
    assert "Log out" in _seen(run, "logged_in_nav")
    r = httpx.post(
        f"{server.url}/api/v1/session", json={"email": EMAIL, "password": PASSWORD}, timeout=10
    )
    assert r.status_code == 401, r.text


def test_every_post_is_answered_as_the_customer_expects(run: dict[str, Any]) -> None:
    posts = [
        re.sub(r"/[0-9a-f]{32}", "/ID", t) for t in _seen(run, "trail") if t.startswith("POST ")
    ]
    assert posts == [
        # The key is shown on the answer itself: there is no page to redirect to.
        "POST /signup 200",
        "POST /logout 303",
        "POST /recover 401",
        "POST /recover 200",
        "POST /login 303",
        "POST /oauth/authorize 303",
    ]


def test_the_consent_page_says_what_this_server_could_read(run: dict[str, Any]) -> None:
    assert _seen(run, "consent_custody") == {
        "text": SERVER_READS.format(ending="while this lasts, if you allow it"),
        "visible": True,
    }


def test_the_vendors_page_says_what_this_server_can_read_while_the_grant_lives(
    run: dict[str, Any],
) -> None:
    assert _seen(run, "grant_path") == f"/vendors/{_seen(run, 'granted')['grant_id']}"
    assert _seen(run, "vendor_custody") == {
        "text": SERVER_READS.format(ending="while it lasts"),
        "visible": True,
    }
