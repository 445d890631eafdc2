"""PKCE (RFC 7636) as OAuth 2.1 and RFC 9700 want it.

Authlib requires PKCE only of public clients and allows ``plain``, its
default (OAUTH.md); here every client must send an S256 challenge. Authlib
already refuses a ``code_verifier`` for a code issued without a challenge
(RFC 9700 4.8.2).
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge


class S256Challenge(CodeChallenge):
    """PKCE for every client (OAuth 2.1), S256 only (RFC 9700 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
                redirect_uri=redirect_uri,
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256", redirect_uri=redirect_uri
            )
        super().validate_code_challenge(grant, redirect_uri)
