"""A login's device, in words a customer recognises: "Firefox on Linux".

Read from the User-Agent at log-in and shown in the session list, so the
customer can tell their sessions apart and end one they do not recognise.

The description comes from a closed vocabulary, never from the header's
text: no version numbers or build strings (which would help fingerprint
the customer) reach the database, even sealed, and every description fits
:data:`LONGEST`. The parser is deliberately small and honest: it knows the
common browsers and command-line clients by the tokens they send, and says
"Unknown device" rather than guess. User-Agent strings lie freely, so this
is a hint for the customer, never a security decision.
"""

from __future__ import annotations

# Checked in this order: each browser's header names the ones it imitates
# (Edge says Chrome and Safari, Chrome says Safari, every iOS browser says
# Safari), so the more specific token goes first.
BROWSERS: tuple[tuple[str, str], ...] = (
    ("edg/", "Edge"),
    ("edga/", "Edge"),
    ("edgios/", "Edge"),
    ("opr/", "Opera"),
    ("samsungbrowser/", "Samsung Internet"),
    ("firefox/", "Firefox"),
    ("fxios/", "Firefox"),
    ("crios/", "Chrome"),
    ("chromium/", "Chromium"),
    ("chrome/", "Chrome"),
    ("safari/", "Safari"),
)

# Clients that are not browsers, known by the product token they start with.
CLIENTS: tuple[tuple[str, str], ...] = (
    ("curl/", "curl"),
    ("wget/", "Wget"),
    ("httpie/", "HTTPie"),
    ("python-httpx/", "Python httpx"),
    ("python-requests/", "Python requests"),
    ("python-urllib/", "Python urllib"),
    ("node", "Node.js"),
    ("undici", "Node.js"),
    ("okhttp/", "OkHttp"),
    ("go-http-client/", "Go"),
    ("postmanruntime/", "Postman"),
)

# iOS before macOS (an iPhone says "like Mac OS X"), Android before Linux.
SYSTEMS: tuple[tuple[str, str], ...] = (
    ("windows", "Windows"),
    ("iphone", "iOS"),
    ("ipad", "iPadOS"),
    ("ipod", "iOS"),
    ("android", "Android"),
    ("cros", "ChromeOS"),
    ("mac os x", "macOS"),
    ("macintosh", "macOS"),
    ("linux", "Linux"),
    ("x11", "Linux"),
)

UNKNOWN = "Unknown device"
UNKNOWN_BROWSER = "Browser"

# The longest description there can be ("Samsung Internet on ChromeOS").
LONGEST = max(
    len(name)
    for name in (
        UNKNOWN,
        *(name for _, name in CLIENTS),
        *(f"{b} on {s}" for b in (UNKNOWN_BROWSER, *(n for _, n in BROWSERS)) for _, s in SYSTEMS),
    )
)


def _first(table: tuple[tuple[str, str], ...], text: str) -> str | None:
    return next((name for token, name in table if token in text), None)


def describe(user_agent: str | None) -> str:
    """A short description of the client that sent ``user_agent``."""
    text = (user_agent or "")[:512].lower()
    if not text:
        return UNKNOWN
    if not text.startswith("mozilla/"):
        # Every browser's header starts so; anything else is a program.
        return next((name for token, name in CLIENTS if text.startswith(token)), UNKNOWN)
    browser = _first(BROWSERS, text) or UNKNOWN_BROWSER
    system = _first(SYSTEMS, text)
    return browser if system is None else f"{browser} on {system}"
