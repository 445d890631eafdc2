"""Refresh tokens from the real authorization code flow with PKCE (S256),
for a server whose consent step answers a plain GET by itself (the bench
interaction route of bench/oidc_provider/server.mjs)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.lib.http import Conn, HttpError, basic_auth, form_post, headers_of


@dataclass(frozen=True)
class AuthCodeFlow:
    """GET the authorization endpoint, follow the 303s with a cookie jar
    until the redirect URI, exchange the code at the token endpoint.
    ``mint_on`` does it on a given load connection, so the token lives on
    whichever worker serves that connection."""

    base_url: str
    authorize_path: str
    token_path: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scope: str

    async def mint_on(self, conn: Conn) -> str:
        host = urlsplit(self.base_url).netloc
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(12)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.scope,
                "state": state,
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
            }
        )
        target, code = f"{self.authorize_path}?{query}", None
        jar: dict[str, str] = {}
        for _ in range(10):
            cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
            request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n"
            request += f"Cookie: {cookie}\r\n\r\n" if cookie else "\r\n"
            status, head, body = await conn.roundtrip(request.encode())
            location = None
            for name, value in headers_of(head):
                if name == "set-cookie":
                    pair = value.split(";", 1)[0]
                    key, _, val = pair.partition("=")
                    jar[key.strip()] = val.strip()
                elif name == "location":
                    location = value
            if status not in (302, 303) or location is None:
                raise HttpError(f"authorization flow stopped at {status}: {body[:300]!r}")
            if location.startswith(self.redirect_uri):
                params = parse_qs(urlsplit(location).query)
                if params.get("state") != [state] or "code" not in params:
                    raise HttpError(f"bad authorization response: {location}")
                code = params["code"][0]
                break
            parts = urlsplit(location)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        if code is None:
            raise HttpError("authorization flow did not reach the redirect URI")
        auth = basic_auth(self.client_id, self.client_secret)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": verifier,
        }
        status, _, body = await conn.roundtrip(form_post(host, self.token_path, auth, form))
        if status != 200:
            raise HttpError(f"code exchange failed with {status}: {body[:300]!r}")
        return str(json.loads(body)["refresh_token"])

    def __call__(self, n: int) -> list[str]:
        """``n`` tokens, each minted on a fresh connection."""

        async def mint_all() -> list[str]:
            parts = urlsplit(self.base_url)
            out = []
            for _ in range(n):
                conn = Conn(parts.hostname or "127.0.0.1", parts.port or 80)
                try:
                    out.append(await self.mint_on(conn))
                finally:
                    conn.close()
            return out

        return asyncio.run(mint_all())
