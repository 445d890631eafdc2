"""The customer's pages in a real browser, each checked by axe-core.

Debian's Chromium, headless, driven by playwright-core
(tests/client/web/browser/pages.mjs, with the packages of
tests/consent/browser), against the real server in a subprocess
(tests/liveserver.py). A customer signs up, edits the profile (a refused
value first), adds a history event and labels it a gift, exports, changes
the password, logs out, logs in and deletes the account; another is shown
the delete page framed by another origin. Every page visited is checked
with axe-core for WCAG 2.0, 2.1 and 2.2 at levels A and AA, and saved as a
screenshot at a phone's and a desktop's width under
``$VRM_SCREENSHOTS/web`` (default ``var/screenshots/web`` in the
repository), which CI keeps (docs/testing.md).
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
SCRIPT = Path(__file__).resolve().parent / "browser" / "pages.mjs"
NEW_PASSWORD = "a different horse battery"
NODE_TIMEOUT = 90
# Every page the journey checks, in the order it meets them.
STEPS = [
    ("home-logged-out", "/"),
    ("signup", "/signup"),
    # The sign-up's answer: the recovery key, shown once.
    ("recovery-key", "/signup"),
    ("home", "/"),
    ("profile", "/data/profile"),
    ("profile-error", "/data/profile"),
    ("preferences", "/data/preferences"),
    ("history-empty", "/data/history"),
    ("history-new", "/data/history/new"),
    ("history", "/data/history"),
    ("history-event", None),
    ("export", "/account/export"),
    ("password", "/account/password"),
    ("login", "/login"),
    ("delete", "/account/delete"),
    ("goodbye", "/goodbye"),
]


def screenshots_dir() -> Path:
    """Where the pages' screenshots go: ``$VRM_SCREENSHOTS/web``, or
    ``var/screenshots/web`` in the repository."""
    base = os.environ.get("VRM_SCREENSHOTS")
    return (Path(base) if base else ROOT / "var" / "screenshots") / "web"


@pytest.fixture(scope="module")
def node() -> str:
    return browser_node(PACKAGES)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("web-pages"), vendor_name="Web Pages") as live:
        yield live


@pytest.fixture(scope="module")
def run(node: str, server: LiveServer) -> dict[str, Any]:
    out = screenshots_dir()
    shutil.rmtree(out, ignore_errors=True)
    framed = server.new_customer("framed")
    return run_browser_script(
        node,
        SCRIPT,
        PACKAGES,
        timeout=NODE_TIMEOUT,
        issuer=server.url,
        email="web-journey@example.org",
        password=PASSWORD,
        new_password=NEW_PASSWORD,
        frame_email=framed.email,
        out_dir=str(out),
    )


def _seen(run: dict[str, Any], scenario: str, key: str) -> Any:
    outcome = run[scenario]
    assert key in outcome, (
        f"the {scenario} scenario stopped before {key!r}:\n{json.dumps(outcome, indent=1)[:6000]}"
    )
    return outcome[key]


def test_the_journey_visits_every_page(run: dict[str, Any]) -> None:
    _seen(run, "journey", "cookies")
    pages = _seen(run, "journey", "pages")
    assert [p["step"] for p in pages] == [step for step, _ in STEPS]
    for page, (_step, path) in zip(pages, STEPS, strict=True):
        if path is not None:
            assert page["path"] == path
    assert pages[10]["path"].startswith("/data/history/")


def test_every_page_has_no_accessibility_violations(run: dict[str, Any]) -> None:
    pages = _seen(run, "journey", "pages")
    found = {p["step"]: p["violations"] for p in pages if p["violations"]}
    assert found == {}
    # axe did check something on each page, at both widths.
    assert all(p["phone_passes"] > 5 and p["desktop_passes"] > 5 for p in pages)


def test_every_page_fits_a_phone_and_is_saved_at_both_widths(run: dict[str, Any]) -> None:
    for page in _seen(run, "journey", "pages"):
        assert page["phone_scroll_width"] <= 390, page["step"]
        for width in ("phone", "desktop"):
            shot = Path(page[f"{width}_screenshot"])
            assert shot.parent == screenshots_dir()
            assert shot.stat().st_size > 0


def test_pages_run_without_csp_violations_console_messages_or_errors(
    run: dict[str, Any],
) -> None:
    assert _seen(run, "journey", "csp_violations") == []
    # The one refused form, its 422 reported as a failed load.
    assert [
        (m["type"], m["text"], m["url"].split("/", 3)[3]) for m in _seen(run, "journey", "console")
    ] == [
        (
            "error",
            "Failed to load resource: the server responded with a status of 422"
            " (Unprocessable Entity)",
            "data/profile",
        )
    ]
    assert _seen(run, "journey", "page_errors") == []


def test_every_post_answers_303_but_the_sign_up_that_shows_the_recovery_key(
    run: dict[str, Any],
) -> None:
    posts = [
        re.sub(r"/[0-9a-f]{32}", "/ID", t)
        for t in _seen(run, "journey", "trail")
        if t.startswith("POST ")
    ]
    assert posts == [
        # The recovery key is on this answer only: it is kept nowhere, so
        # there is no page to redirect to.
        "POST /signup 200",
        # The one refused form answers with itself, and says why.
        "POST /data/profile 422",
        "POST /data/profile 303",
        "POST /data/history/new 303",
        "POST /data/history/ID 303",
        "POST /account/password 303",
        "POST /logout 303",
        "POST /login 303",
        "POST /account/delete 303",
    ]


def test_the_journey_was_shown_a_recovery_key_at_sign_up(run: dict[str, Any]) -> None:
    assert re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}", _seen(run, "journey", "recovery_key"))


def test_the_skip_link_comes_first_and_moves_focus_to_the_main_content(
    run: dict[str, Any],
) -> None:
    assert _seen(run, "journey", "first_tab") == "Skip to main content"
    assert _seen(run, "journey", "after_skip") == "main"


def test_a_refused_value_is_explained_and_kept(run: dict[str, Any]) -> None:
    assert "Phone: is not in the expected format." in _seen(run, "journey", "profile_error")
    assert _seen(run, "journey", "phone_kept") == "call me"
    assert _seen(run, "journey", "profile_saved") == "Saved."


def test_the_export_holds_the_profile_and_the_gift(run: dict[str, Any]) -> None:
    assert _seen(run, "journey", "export_filename") == "vrm-export.json"
    export = _seen(run, "journey", "export")
    assert export["account"]["email"] == "web-journey@example.org"
    assert export["profile"]["given_name"] == "Ana"
    assert export["profile"]["phone"] == "+351 21 000 0000"
    (event,) = export["history"]
    assert (event["vendor"], event["labels"]) == ("Livraria Lello", ["gift"])
    assert [i["name"] for i in event["items"]] == ["A book for my aunt"]
    assert _seen(run, "journey", "history_labels") == "Labels: Gift"
    assert _seen(run, "journey", "gift_explained").startswith("Shared, marked as a gift")


def test_password_change_log_out_and_log_in_again(run: dict[str, Any]) -> None:
    assert _seen(run, "journey", "password_changed").startswith("Your password was changed.")
    assert "Log in" in _seen(run, "journey", "after_logout_nav")
    assert "POST /login 303" in _seen(run, "journey", "trail")


def test_the_deleted_account_is_gone(run: dict[str, Any], server: LiveServer) -> None:
    assert _seen(run, "journey", "cookies") == []
    r = httpx.post(
        f"{server.url}/api/v1/session",
        json={"email": "web-journey@example.org", "password": NEW_PASSWORD},
        timeout=10,
    )
    assert r.status_code == 401, r.text


def test_a_page_framed_by_another_origin_is_refused(run: dict[str, Any]) -> None:
    assert _seen(run, "frame", "frame_url") == "chrome-error://chromewebdata/"
    assert _seen(run, "frame", "frame_forms") == 0
    refusals = [m for m in _seen(run, "frame", "console") if "frame-ancestors 'none'" in m["text"]]
    assert len(refusals) == 1
    assert refusals[0]["type"] == "error"
    # The server answered with the page itself (the session went along): the
    # browser refused to show it.
    (response,) = _seen(run, "frame", "frame_responses")
    assert response == {"path": "/account/delete", "status": 200, "x_frame_options": "DENY"}
