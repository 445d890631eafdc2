"""The customer's consent journey in a real browser.

Debian's Chromium, headless, driven by playwright-core
(tests/consent/browser/journey.mjs), against the real server in a subprocess
(tests/liveserver.py). Unlike an HTTP client, the browser enforces what the
pages declare: the Content-Security-Policy (a nonce'd style, ``form-action``
applied to the redirect after a form post, ``frame-ancestors``), SameSite
cookies, and labels a customer can click by their words. The vendor's
callback is a real server on its redirect URI, run by the script.

The browser is not downloaded by a test tool: ``scripts/ensure-chromium.sh``
(run by ``make pytest``) installs Debian's package; without it these tests
fail and say so. The harness installs playwright-core from the lockfile
(``npm ci``) when node_modules is missing or stale.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.liveserver import Customer, LiveServer, live_server
from tests.nodejs import CHROMIUM, browser_node, options

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
VENDOR_NAME = "Corner Bookshop"
PURPOSE = "dpv:ServiceProvision"
SCOPE = "profile.email:read profile.phone:read preferences:read"
UNTICK = "Read your phone number"
DURATION = "30 days"
NODE_TIMEOUT = 60


@pytest.fixture(scope="module")
def node() -> str:
    """Node with playwright-core installed from package-lock.json, and
    Debian's Chromium for it to drive."""
    return browser_node(BROWSER_DIR)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser-server"), vendor_name=VENDOR_NAME) as live:
        yield live


@dataclass(frozen=True)
class Journey:
    """What journey.mjs saw, scenario by scenario (allow, deny, frame,
    csp_canary). A scenario the browser stopped half-way keeps what it saw
    before, plus ``failed``, the page it was on and the browser's log."""

    allowing: Customer
    result: dict[str, Any]

    def seen(self, scenario: str, key: str) -> Any:
        outcome = self.result[scenario]
        assert key in outcome, (
            f"the {scenario} scenario stopped before {key!r}:\n{json.dumps(outcome, indent=1)}"
        )
        return outcome[key]


@pytest.fixture(scope="module")
def journey(node: str, server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Journey:
    """One browser run: the allow, deny and framing scenarios."""
    allowing = server.new_customer("allow")
    denying = server.new_customer("deny")
    out_dir = tmp_path_factory.mktemp("browser-screenshots")
    done = subprocess.run(
        [
            node,
            str(BROWSER_DIR / "journey.mjs"),
            *options(
                issuer=server.url,
                client_id=server.vendor.client_id,
                redirect_uri=server.vendor.redirect_uri,
                scope=SCOPE,
                purpose=PURPOSE,
                email=allowing.email,
                password=allowing.password,
                deny_email=denying.email,
                untick=UNTICK,
                duration=DURATION,
                out_dir=str(out_dir),
                chromium=str(CHROMIUM),
            ),
        ],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"the browser journey failed:\n{done.stderr}\n{done.stdout}"
    return Journey(allowing=allowing, result=json.loads(done.stdout.strip().splitlines()[-1]))


def test_customer_is_sent_to_login_then_to_the_consent_page(journey: Journey) -> None:
    assert journey.seen("allow", "login_path") == "/login"
    assert journey.seen("allow", "shown")["title"] == f"Share your data with {VENDOR_NAME}?"


def test_consent_page_names_vendor_purpose_and_items_in_plain_words(journey: Journey) -> None:
    shown = journey.seen("allow", "shown")
    assert shown["heading"] == f"{VENDOR_NAME} asks to use some of your data"
    assert "Purpose: to provide the service you asked for" in shown["text"]
    assert [(i["label"], i["value"], i["checked"]) for i in shown["items"]] == [
        ("Read all your preferences", "preferences:read", True),
        ("Read your contact email address", "profile.email:read", True),
        ("Read your phone number", "profile.phone:read", True),
    ]
    assert DURATION in shown["durations"]
    assert Path(journey.seen("allow", "screenshot")).stat().st_size > 0


def test_consent_page_style_applies_under_its_csp(journey: Journey) -> None:
    shown = journey.seen("allow", "shown")
    # base.html: body { max-width: 36rem; font-family: system-ui, sans-serif }
    assert shown["body_max_width"] == "576px"
    assert shown["body_font_family"] == "system-ui, sans-serif"


def test_unticking_by_its_words_unticks_that_item_only(journey: Journey) -> None:
    items = journey.seen("allow", "submitted")["items"]
    assert [(i["value"], i["checked"]) for i in items] == [
        ("preferences:read", True),
        ("profile.email:read", True),
        ("profile.phone:read", False),
    ]


def test_allow_redirects_to_vendor_with_code_state_and_iss(
    journey: Journey, server: LiveServer
) -> None:
    query = journey.seen("allow", "query")
    assert journey.seen("allow", "trail") == [
        "GET /oauth/authorize 303",
        "GET /login 200",
        "POST /login 303",
        "GET /oauth/authorize 200",
        "POST /oauth/authorize 303",
        f"GET {server.vendor.redirect_uri} 200",
    ]
    assert sorted(query) == ["code", "iss", "state"]
    assert query["state"] == journey.seen("allow", "state")
    # RFC 9207: the issuer identifier, exactly.
    assert query["iss"] == server.url


def test_code_exchanges_for_only_the_ticked_scopes(journey: Journey, server: LiveServer) -> None:
    vendor = server.vendor
    r = httpx.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": journey.seen("allow", "query")["code"],
            "redirect_uri": vendor.redirect_uri,
            "code_verifier": journey.seen("allow", "code_verifier"),
        },
        auth=(vendor.client_id, vendor.client_secret),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"].lower() == "bearer"
    assert body["access_token"]
    assert body["scope"] == "preferences:read profile.email:read"


def test_grant_lasts_the_duration_chosen_on_the_page(journey: Journey, server: LiveServer) -> None:
    journey.seen("allow", "query")  # the customer did allow
    customer = journey.allowing
    with httpx.Client(base_url=server.url, timeout=10) as http:
        r = http.post(
            "/api/v1/session", json={"email": customer.email, "password": customer.password}
        )
        assert r.status_code == 200, r.text
        r = http.get("/api/v1/me/grants")
    assert r.status_code == 200, r.text
    (grant,) = r.json()["items"]
    assert grant["vendor"]["name"] == VENDOR_NAME
    assert grant["scopes"] == ["preferences:read", "profile.email:read"]
    assert grant["purpose"] == PURPOSE
    lasts = datetime.fromisoformat(grant["expires_at"]) - datetime.fromisoformat(
        grant["created_at"]
    )
    assert abs(lasts - timedelta(days=30)) < timedelta(minutes=1), lasts


def test_session_cookie_is_httponly_and_lax_and_login_csrf_cookie_is_gone(
    journey: Journey,
) -> None:
    assert journey.seen("allow", "cookies") == [
        {"name": "vrm_session", "httpOnly": True, "sameSite": "Lax", "path": "/"}
    ]


@pytest.mark.parametrize("scenario", ["allow", "deny"])
def test_pages_run_without_csp_violations_console_messages_or_errors(
    journey: Journey, scenario: str
) -> None:
    assert journey.seen(scenario, "csp_violations") == []
    assert journey.seen(scenario, "console") == []
    assert journey.seen(scenario, "page_errors") == []


def test_csp_violations_would_be_seen(journey: Journey) -> None:
    """The listener behind the test above hears a violation when there is
    one: a <style> without the nonce, added to /login."""
    violations = journey.seen("csp_canary", "csp_violations")
    assert [v["directive"] for v in violations] == ["style-src-elem"]


def test_deny_redirects_with_access_denied_state_and_iss(
    journey: Journey, server: LiveServer
) -> None:
    assert journey.seen("deny", "heading") == f"{VENDOR_NAME} asks to use some of your data"
    assert journey.seen("deny", "final_url").startswith(server.vendor.redirect_uri + "?")
    query = journey.seen("deny", "query")
    assert sorted(query) == ["error", "error_description", "iss", "state"]
    assert query["error"] == "access_denied"
    assert query["state"] == journey.seen("deny", "state")
    assert query["iss"] == server.url


def test_consent_page_cannot_be_framed(journey: Journey) -> None:
    # The browser refused to show the frame: Chromium's error page, no form.
    assert journey.seen("frame", "frame_url") == "chrome-error://chromewebdata/"
    assert journey.seen("frame", "frame_forms") == 0
    console = journey.seen("frame", "console")
    refusals = [m for m in console if "frame-ancestors 'none'" in m["text"]]
    assert len(refusals) == 1, console
    assert refusals[0]["type"] == "error"
    assert "The request has been blocked" in refusals[0]["text"]
    assert journey.seen("frame", "page_errors") == []
    # What it refused was the consent page itself: the session cookie went
    # along (same-site), so the server answered 200, not a redirect to /login.
    (response,) = journey.seen("frame", "frame_responses")
    assert response["path"] == "/oauth/authorize"
    assert response["status"] == 200
    assert "frame-ancestors 'none'" in response["content_security_policy"]
    assert response["x_frame_options"] == "DENY"
