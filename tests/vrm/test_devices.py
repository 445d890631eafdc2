"""The device a session is shown with, read from the User-Agent."""

from __future__ import annotations

import pytest

from vrm.accounts import devices

AGENTS = [
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "Firefox on Linux",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36",
        "Chrome on Windows",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
        "Edge on Windows",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        "Safari on macOS",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "Chrome on iOS",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
        " (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
        "Firefox on iPadOS",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0",
        "Opera on Android",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko)"
        " Chrome/131.0.0.0 Safari/537.36",
        "Chrome on ChromeOS",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
        " HeadlessChrome/131.0.0.0 Safari/537.36",
        "Chrome on Linux",
    ),
    ("Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Iceweasel/1.0", "Browser on Linux"),
    ("Mozilla/5.0", "Browser"),
    ("curl/8.5.0", "curl"),
    ("Wget/1.21.4", "Wget"),
    ("HTTPie/3.2.4", "HTTPie"),
    ("python-httpx/0.28.1", "Python httpx"),
    ("python-requests/2.32.3", "Python requests"),
    ("node", "Node.js"),
    ("Go-http-client/1.1", "Go"),
    # A program that names a system is still not a browser.
    ("MyApp/1.0 (Linux; Android 14)", "Unknown device"),
    ("testclient", "Unknown device"),
    ("", "Unknown device"),
    (None, "Unknown device"),
]


@pytest.mark.parametrize(("user_agent", "expected"), AGENTS)
def test_a_user_agent_is_described_in_words(user_agent: str | None, expected: str) -> None:
    assert devices.describe(user_agent) == expected


def test_no_description_is_longer_than_the_padding() -> None:
    assert devices.LONGEST == len("Samsung Internet on ChromeOS")
    long_header = "Mozilla/5.0 (Linux; Android 14) " + "x" * 100_000 + " Firefox/1"
    assert devices.describe(long_header) == "Browser on Android"
