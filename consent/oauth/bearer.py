"""RFC 6750: the one place a request's ``Authorization: Bearer`` header
becomes an active access token, or a refusal with its challenge.

Every resource that takes an access token calls :func:`active_token`: the
vendor data reads (the lean app and its routes), deposits, the feed and
userinfo. None reads the header itself, so a header one of them accepts,
every one accepts, and a refusal carries the same ``WWW-Authenticate``
challenge (section 3) wherever it is sent. The vendor API renders the
refusals as problem details; userinfo in the OIDC format (:func:`oidc_error`,
OIDC Core 5.3.3).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection
from starlette.responses import JSONResponse

from consent.oauth.tokens import ActiveToken, check_access_token
from vrm.errors import Forbidden, Unauthenticated
from vrm.keys.service import Vault

REALM = 'Bearer realm="vrm"'
NO_TOKEN = "Send an access token as Authorization: Bearer."  # noqa: S105 - a message
NOT_ACTIVE = "The access token is not active."


def token_of(headers: Mapping[str, str]) -> str | None:
    """The token of the ``Authorization: Bearer`` header, or None. Section
    2.1 only: never from the query string or the body (2.2 and 2.3 are
    refused, RFC 9700 4.3.2). The scheme is case-insensitive (RFC 9110
    11.1)."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def challenge(error: str | None = None, **params: str) -> str:
    """The ``WWW-Authenticate`` value (section 3): without an error code
    when the request carried no token (3.1)."""
    value = REALM
    if error:
        value += f', error="{error}"'
    for name, param in params.items():
        value += f', {name}="{param}"'
    return value


class InvalidToken(Unauthenticated):
    """Section 3.1: no token, or one that is not active (unknown, expired,
    revoked, or its grant ended)."""

    slug = "invalid-token"

    def __init__(self, detail: str, *, token_sent: bool) -> None:
        super().__init__(detail)
        self.token_sent = token_sent

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": challenge("invalid_token" if self.token_sent else None)}


class InsufficientScope(Forbidden):
    """Section 3.1 ``insufficient_scope``: the token is good, the grant
    does not cover what was asked."""

    slug = "insufficient-scope"

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        super().__init__(detail, **({"scope": scope} if scope else {}))
        self.scope = scope

    def headers(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": challenge(
                "insufficient_scope", **({"scope": self.scope} if self.scope else {})
            )
        }


def active_token(conn: Connection, vault: Vault, headers: Mapping[str, str]) -> ActiveToken:
    """What the request's Bearer token may do right now; InvalidToken if
    none was sent or it is not active."""
    token = token_of(headers)
    if token is None:
        raise InvalidToken(NO_TOKEN, token_sent=False)
    active = check_access_token(conn, vault, token)
    if active is None:
        raise InvalidToken(NOT_ACTIVE, token_sent=True)
    return active


def oidc_error(status: int, error: str | None = None, description: str = "") -> JSONResponse:
    """A refusal in the format of OIDC Core 5.3.3 (userinfo): the error in
    the challenge and in a JSON body; none of either without a token."""
    if error is None:
        return JSONResponse({}, status_code=status, headers={"WWW-Authenticate": challenge()})
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"WWW-Authenticate": challenge(error, error_description=description)},
    )
