"""Posting one notice to a vendor (RFC 8935), and what to do next.

Only to the vendor's registered ``notify_uri``, over https (http only to
a loopback host, as registration already insists), with a short timeout,
no redirect followed and no more than :data:`MAX_BODY` bytes of the answer
read. A 202 is the vendor's acknowledgement. A 400 is the vendor refusing
the token (RFC 8935 section 2.4, its ``err`` code kept): the same token
would be refused again, so the notice is parked at once. Anything else
(no answer, a timeout, 429, 5xx, another status) is tried again later,
backing off exponentially with jitter, for up to :data:`GIVE_UP_AFTER`;
then the notice is parked for the operator (``vrm notices``).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from consent.notices.secevent import MEDIA_TYPE
from consent.vendors.metadata import LOOPBACK_HOSTS
from vrm.dbtypes import utcnow

MAX_BODY = 4096
GIVE_UP_AFTER = timedelta(days=1)
FIRST_RETRY = timedelta(seconds=10)
LONGEST_WAIT = timedelta(hours=6)
# RFC 8935 section 2.4's error codes, and nothing else, reach the outcome.
ERROR_CODES = frozenset(
    {
        "invalid_request",
        "invalid_key",
        "invalid_issuer",
        "invalid_audience",
        "authentication_failed",
        "access_denied",
    }
)


@dataclass(frozen=True)
class Outcome:
    """What one attempt met. ``retry_after``: the vendor's Retry-After."""

    text: str  # "202", "http 503", "timeout", "refused: invalid_audience"
    acknowledged: bool = False
    final: bool = False  # parked at once: trying again cannot help
    retry_after: timedelta | None = None


def check_uri(uri: str) -> str | None:
    """Why the notice cannot go to ``uri``, or None."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "refused: notify_uri is not https"


def post(client: httpx.Client, uri: str, token: str) -> Outcome:
    """Send the token; never raises for what the vendor's side does."""
    refused = check_uri(uri)
    if refused is not None:
        return Outcome(refused, final=True)
    headers = {"Content-Type": MEDIA_TYPE, "Accept": "application/json"}
    try:
        with client.stream("POST", uri, content=token, headers=headers) as response:
            status = response.status_code
            body = _head(response) if status == 400 else b""
            retry_after = _retry_after(response.headers.get("retry-after"))
    except httpx.TimeoutException:
        return Outcome("timeout")
    except httpx.HTTPError as exc:
        return Outcome(f"no answer ({type(exc).__name__})")
    if status == 202:
        return Outcome("202", acknowledged=True)
    if status == 400:
        return Outcome(f"refused: {_error_code(body)}", final=True)
    if 300 <= status < 400:
        return Outcome(f"http {status} (redirects are not followed)")
    return Outcome(f"http {status}", retry_after=retry_after)


def _head(response: httpx.Response) -> bytes:
    read = b""
    for chunk in response.iter_bytes():
        read += chunk
        if len(read) >= MAX_BODY:
            return read[:MAX_BODY]
    return read


def _error_code(body: bytes) -> str:
    try:
        found = json.loads(body)
    except ValueError:
        return "unreadable answer"
    code = found.get("err") if isinstance(found, dict) else None
    return code if code in ERROR_CODES else "unknown error code"


def _retry_after(value: str | None) -> timedelta | None:
    if value is None:
        return None
    if value.strip().isdigit():
        return timedelta(seconds=int(value.strip()))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when - utcnow(), timedelta(0))


def next_attempt(
    attempts: int, created_at: datetime, now: datetime, retry_after: timedelta | None = None
) -> datetime | None:
    """When to try again after ``attempts`` failed ones (None: give up).
    Exponential from :data:`FIRST_RETRY`, capped at :data:`LONGEST_WAIT`,
    with full jitter over its upper half; never sooner than the vendor's
    Retry-After."""
    doublings: int = min(max(attempts - 1, 0), 16)
    ceiling: timedelta = min(FIRST_RETRY * (2**doublings), LONGEST_WAIT)
    wait: timedelta = ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret
    if retry_after is not None:
        wait = max(wait, min(retry_after, LONGEST_WAIT))
    due: datetime = now + wait
    if due > created_at + GIVE_UP_AFTER:
        return None
    return due
