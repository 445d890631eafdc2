"""RFC 9396 rich authorization requests at the authorization server: the
``authorization_details`` parameter read, refused, and echoed back.

What the details may hold is decided by consent/scopes.py; this module only
puts that decision into OAuth's terms.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import OAuth2Error

from consent.grants import service as grants
from consent.grants.models import Grant
from consent.oauth.errors import ascii_only
from consent.policy import Access
from vrm import strictjson


class InvalidAuthorizationDetailsError(OAuth2Error):
    """RFC 9396 section 5."""

    error = "invalid_authorization_details"


def read_details(raw: str | None) -> Any:
    """The ``authorization_details`` parameter parsed, or None when absent.
    Through the one parser for outside JSON, depth and numbers bounded."""
    if raw is None:
        return None
    try:
        return strictjson.loads(raw)
    except strictjson.Rejected as exc:
        raise InvalidAuthorizationDetailsError(
            ascii_only(f"authorization_details is not JSON this server reads: {exc.message}")
        ) from None


def granted_details(accesses: list[Access], grant: Grant) -> list[dict[str, Any]]:
    """RFC 9396 7: the details granted for this token, which may be fewer
    than its grant holds (a narrower request, RFC 9700 2.3)."""
    return grants.details_for(accesses, grant.purpose, grant)
