"""Authlib's authorization server, fitted to Starlette and to our rules.

Authlib is synchronous and has no Starlette integration. Routes read the
request body in async code, then call :meth:`Server.run` in a worker thread
with a database session; Authlib's callbacks find that session through a
context variable. Where Authlib's defaults fall short of OAuth 2.1 and RFC
9700 (see the shared OAUTH.md) the subclasses here tighten them:

- PKCE is required of every client, S256 only;
- codes are consumed atomically, and a second use revokes what the first
  one issued;
- refresh tokens rotate on every use, and a replayed one revokes its family;
- parameters come from the query (GET) or the form (POST), never both, and
  empty values count as absent;
- only the code, refresh and client-credentials grants exist.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InsecureTransportError,
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    UnsupportedResponseTypeError,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.errors import RequestNotSupportedError, RequestURINotSupportedError
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from starlette.datastructures import Headers
from starlette.responses import Response

from consent.grants import service as grants
from consent.grants.models import Grant
from consent.oauth import keys, store, tokens
from consent.oauth.models import AuthorizationCode
from consent.oauth.store import TokenRow
from consent.scopes import (
    VENDOR_SCOPES,
    Access,
    DataRequest,
    DetailsError,
    ScopeError,
    data_request,
    parse_scopes,
    scope_string,
    within,
)
from consent.vendors import service as vendors
from consent.vendors.models import Vendor
from vrm import strictjson
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow
from vrm.keys.service import Vault
from vrm.settings import Settings

# Authlib logs whole token dicts at DEBUG; never let them reach a log.
logging.getLogger("authlib").setLevel(logging.INFO)

SECRET_METHODS = ("client_secret_basic", "client_secret_post")
TOKEN_AUTH_METHODS = [*SECRET_METHODS, "private_key_jwt"]
# Algorithms a private_key_jwt assertion may be signed with (asymmetric only).
ASSERTION_ALGS = ["ES256", "ES384", "EdDSA", "PS256", "RS256"]
# Longest a private_key_jwt assertion may live: bounds the jti store.
ASSERTION_MAX_SECONDS = 300

# Authlib's callbacks find the database here: the ORM session of an
# authorization page, or the bare connection of a vendor endpoint.
_db: ContextVar[Session] = ContextVar("consent_db")
_conn: ContextVar[Connection] = ContextVar("consent_conn")
T = TypeVar("T")


_ENCODE_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_NO_STORE = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))
# Authlib's header lists, as raw ASGI headers (Authlib passes the same few
# lists on every answer: a token, an error, an introspection).
_RAW_HEADERS: dict[tuple[tuple[str, str], ...], list[tuple[bytes, bytes]]] = {}
_RAW_HEADERS_KEPT = 64


def _raw_headers(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    raw = _RAW_HEADERS.get(headers)
    if raw is None:
        names = {name.lower() for name, _ in headers}
        raw = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in dict(headers).items()
            if name.lower() not in ("cache-control", "pragma", "content-length")
        ]
        raw.extend(_NO_STORE)
        if "content-type" not in names:
            raw.append((b"content-type", b"application/json"))
        if len(_RAW_HEADERS) < _RAW_HEADERS_KEPT:
            _RAW_HEADERS[headers] = raw
    return raw


class JSONAnswer(Response):
    """A JSON answer of the authorization server (a token, an error, an
    introspection, a registration), never to be cached (RFC 6749 5.1): the
    headers Authlib gives, with ``Cache-Control: no-store`` and
    ``Pragma: no-cache`` whatever it gave for those. Built without
    Starlette's generic header handling, which cost as much as the rest of
    a token answer."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int, headers: Any = ()) -> None:
        self.status_code = status_code
        self.background = None
        self.body = _ENCODE_JSON(content).encode()
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.raw_headers = [
            *_raw_headers(tuple(pairs)),
            (b"content-length", str(len(self.body)).encode()),
        ]


class Transactional(Protocol):
    """What commit() and rollback() act on with a bare connection: the
    connection itself, or the request's savepoint in a group commit
    (vrm/groupcommit.py)."""

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


_tx: ContextVar[Transactional] = ContextVar("consent_tx")


class InvalidAuthorizationDetailsError(OAuth2Error):
    """RFC 9396 section 5."""

    error = "invalid_authorization_details"


# -- requests ---------------------------------------------------------------


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        sent = 0
        for key, value in items:
            if value != "":  # RFC 6749 3.1: empty means omitted
                datalist[key].append(value)
                sent += 1
        self._datalist = datalist
        self._data = {k: v[0] for k, v in datalist.items()}
        # RFC 6749 3.1: "Request and response parameters MUST NOT be
        # included more than once." The first one sent, if any was; the
        # endpoints refuse the request (``data`` holds only first values).
        self.repeated: str | None = None
        if sent != len(datalist):
            self.repeated = next(k for k, v in datalist.items() if len(v) > 1)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


@lru_cache(maxsize=16)
def _check_transport(origin: str) -> None:
    InsecureTransportError.check(origin + "/")


# What OAuth2Request.__init__ sets on every request, as it sets it.
_REQUEST_DEFAULTS = vars(OAuth2Request("POST", "https://issuer.invalid/"))


class Request(OAuth2Request):
    """An OAuth request whose parameters come from exactly one place: the
    query for GET, the form for POST."""

    def __init__(self, method: str, uri: str, headers: Headers, items: list[tuple[str, str]]):
        # As OAuth2Request.__init__, but its check that the URL is https (or
        # loopback) runs once per origin, not on each request: it read the
        # environment and parsed the URL and its IP address every time, a
        # twentieth of a token request. Our URLs all start with the issuer.
        scheme, _, rest = uri.partition("://")
        _check_transport(f"{scheme}://{rest.partition('/')[0].partition('?')[0]}")
        self.__dict__.update(_REQUEST_DEFAULTS)
        self.method = method
        self.uri = uri
        self.headers = headers
        self.payload = _Payload(items)
        # Set by the consent page: what the customer allowed.
        self.decision: Decision | None = None
        self.data_request: DataRequest | None = None
        # OIDC Core 3.1.2.1 max_age, in seconds, once validated.
        self.max_age: int | None = None

    def parameters(self) -> list[tuple[str, str]]:
        """Every parameter, repeated ones included, in order of name."""
        return [(k, v) for k, values in self.payload.datalist.items() for v in values]

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data if self.method == "POST" else {}


@dataclass
class Decision:
    """The customer's answer on the consent page (or an existing grant)."""

    customer: Customer
    grant: Grant
    auth_time: datetime


# -- models seen by Authlib -------------------------------------------------


class Client(ClientMixin):
    def __init__(self, vendor: Vendor, vault: Vault) -> None:
        self.vendor = vendor
        self.vault = vault

    def get_client_id(self) -> str:
        return self.vendor.id

    def get_default_redirect_uri(self) -> str | None:
        # With several registered URIs the client must say which one.
        uris = self.vendor.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.vendor.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return vendors.check_secret(self.vault, self.vendor, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        registered = self.vendor.token_endpoint_auth_method
        if registered in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == registered

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.check_grant_type("authorization_code")

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.vendor.grant_types


class Code:
    """An authorization code row, as Authlib's grant wants to see it."""

    def __init__(self, row: AuthorizationCode, grant: Grant) -> None:
        self.row = row
        self.grant = grant
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str | None:
        return self.row.redirect_uri or None

    def get_scope(self) -> str:
        # What the grant still allows: it may have been narrowed since.
        accesses, openid = parse_scopes(self.row.scope)
        allowed = within(accesses, grants.accesses_of(self.grant))
        return scope_string(allowed, openid and self.grant.openid)

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> str | None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


class Token(TokenMixin):
    """A token row plus what it may do right now (None: not usable)."""

    def __init__(self, row: TokenRow, active: tokens.ActiveToken | None, kind: str) -> None:
        self.row = row
        self.active = active
        self.kind = kind

    def check_client(self, client: Client) -> bool:
        return self.row.vendor_id == client.vendor.id

    def get_scope(self) -> str:
        return self.active.scope if self.active is not None else ""

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - utcnow()).total_seconds()))

    def is_expired(self) -> bool:
        end = self.row.expires_at if self.kind == "access_token" else self.row.refresh_expires_at
        return end is None or end <= utcnow()

    def is_revoked(self) -> bool:
        return self.active is None

    def get_user(self) -> str | None:
        return self.row.customer_id

    def get_client(self) -> str:
        return self.row.vendor_id


def db() -> Session:
    """The ORM session: only on the authorization pages."""
    return _db.get()


def conn() -> Connection:
    """The connection every callback's Core statements run on."""
    session = _db.get(None)
    # A session hands out a new connection after each commit: ask each time.
    return session.connection() if session is not None else _conn.get()


def commit() -> None:
    session = _db.get(None)
    if session is not None:
        session.commit()
    else:
        _tx.get().commit()


def rollback() -> None:
    session = _db.get(None)
    if session is not None:
        session.rollback()
    else:
        _tx.get().rollback()


# -- grants -----------------------------------------------------------------


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


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43

    server: Server

    def validate_requested_scope(self) -> None:
        """Our scopes, purpose and authorization_details, checked strictly."""
        request: Request = self.request
        data = request.payload.data
        details_raw = data.get("authorization_details")
        if request.payload.repeated is not None:
            # RFC 6749 3.1, for every parameter (Authlib checks five).
            name = quoted(request.payload.repeated)
            raise InvalidRequestError(f"{name} is sent more than once (RFC 6749 3.1)")
        refused = _request_object_error(data)
        if refused is not None:
            raise refused
        request.max_age = _max_age(data.get("max_age"))
        details: Any = None
        if details_raw is not None:
            try:
                details = strictjson.loads(details_raw)
            except strictjson.Rejected as exc:
                raise InvalidAuthorizationDetailsError(
                    _ascii(f"authorization_details is not JSON this server reads: {exc.message}")
                ) from None
        try:
            request.data_request = data_request(
                scope=data.get("scope"), purpose=data.get("purpose"), authorization_details=details
            )
        except DetailsError as exc:
            raise InvalidAuthorizationDetailsError(_ascii(str(exc))) from None
        except ScopeError as exc:
            raise InvalidScopeError(_ascii(str(exc))) from None
        challenge = data.get("code_challenge")
        if challenge and self._challenge_seen(request.client.vendor.id, challenge):
            # RFC 9700 2.1.1: a constant challenge is no protection at all.
            raise InvalidRequestError("code_challenge was used before: make one per request")

    def _challenge_seen(self, vendor_id: str, challenge: str) -> bool:
        found = db().exec(
            select(AuthorizationCode.code_hash).where(
                AuthorizationCode.vendor_id == vendor_id,
                AuthorizationCode.code_challenge == challenge,
            )
        )
        return found.first() is not None

    def save_authorization_code(self, code: str, request: Request) -> None:
        decision = request.decision
        if decision is None:  # pragma: no cover - the routes always decide first
            raise RuntimeError("no consent decision for this authorization")
        grant = decision.grant
        data = request.payload.data
        now = utcnow()
        asked = request.data_request
        if asked is None:  # pragma: no cover - set by validate_requested_scope
            raise RuntimeError("an authorization without its validated request")
        # RFC 9700 2.3: the code carries what was asked for and granted,
        # never the rest of a wider grant that happens to cover the request.
        accesses = within(asked.accesses, grants.accesses_of(grant))
        row = AuthorizationCode(
            code_hash=self.server.vault.token_hash(code),
            vendor_id=request.client.vendor.id,
            customer_id=decision.customer.id,
            grant_id=grant.id,
            redirect_uri=data.get("redirect_uri", ""),
            scope=scope_string(accesses, asked.openid and grant.openid),
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            nonce=data.get("nonce"),
            auth_time=decision.auth_time,
            expires_at=now + timedelta(seconds=self.server.settings.code_ttl_seconds),
        )
        session = db()
        # Used and expired codes stay as tombstones (reuse, nonce and
        # challenge replay are caught while they last) until vrm/purge.py
        # takes them, VRM_RETAIN_SPENT_CODES_SECONDS after they expire.
        session.add(row)
        session.commit()

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        db = conn()
        code_hash = self.server.vault.token_hash(code)
        row = store.code(db, code_hash)
        if row is None or row.vendor_id != client.vendor.id:
            return None
        # Consume atomically: exactly one exchange wins.
        if not store.consume_code(db, code_hash, utcnow()):
            # Second use: deny, and revoke whatever the first use issued
            # (RFC 9700 4.2.4, OAuth 2.1 4.1.3).
            tokens.revoke_family(db, row.grant_id, family_of(code_hash))
            commit()
            return None
        commit()
        if row.expires_at <= utcnow():
            return None
        grant = store.grant(conn(), row.grant_id)
        if grant is None or not grants.is_active(grant):
            return None
        return Code(row, grant)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        # The used row stays as a tombstone until it expires, so reuse is seen.
        return None

    def authenticate_user(self, authorization_code: Code) -> Customer | None:
        return store.customer(conn(), authorization_code.row.customer_id)


def _request_object_error(data: Mapping[str, str]) -> OAuth2Error | None:
    """OIDC Core 6.1, 6.2: request objects are not supported, and saying so
    beats acting on the plain parameters beside an ignored one."""
    if "request" in data:
        return RequestNotSupportedError("request objects are not supported")
    if "request_uri" in data:
        return RequestURINotSupportedError("request_uri is not supported")
    return None


def _details(accesses: list[Access], grant: Grant) -> list[dict[str, Any]]:
    """RFC 9396 7: the details granted for this token, which may be fewer
    than its grant holds (a narrower request, RFC 9700 2.3)."""
    return grants.details_for(accesses, grant.purpose, grant)


def _max_age(raw: str | None) -> int | None:
    """OIDC Core 3.1.2.1: a non-negative number of seconds."""
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise InvalidRequestError("max_age must be a number of seconds")
    return int(raw)


def _row_id(now: datetime) -> str:
    """A token row's id, which its tokens carry (consent/oauth/tokens.py):
    32 hex digits, the time in microseconds first, so that new rows go to
    the end of the id index (and of the grant-and-family index, for a
    client-credentials token, whose family is its own id) rather than to a
    random page of it; every random page is one more page a commit writes. It says when the token
    was issued, which its holder knows anyway, and nothing else."""
    return f"{int(now.timestamp() * 1_000_000):014x}{secrets.token_hex(9)}"


def family_of(code_hash: bytes) -> str:
    """Tokens issued from one code share a family id derived from it, so a
    reused code can find and revoke them."""
    return code_hash[:16].hex()


class RefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    server: Server
    narrowed: str | None = None

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        db = conn()
        vendor = self.request.client.vendor
        found = tokens.find_refresh(db, self.server.vault, refresh_token, vendor)
        if found is None:
            return None
        row = found.row
        active = None
        if row.refreshed_at is None and row.revoked_at is None:
            # Everything that can refuse this request without it being a
            # replay comes before the token is used up, so a harmless client
            # mistake (asking for too wide a scope) does not cost the family.
            active = found.usable()
            if active is None:
                return None
            self.narrowed = self._narrowed(active)
        if active is None or not tokens.consume_refresh(db, row):
            # Replay of a rotated (or revoked) refresh token: one of the two
            # holders is an attacker, so the whole family dies.
            rollback()
            tokens.revoke_family(conn(), row.grant_id, row.family_id)
            commit()
            return None
        # Not committed here: the use and the next token of the family are
        # one transaction (save_token commits). A concurrent second use
        # waits on the row and then finds it used.
        return Token(row, active, "refresh_token")

    def _narrowed(self, active: tokens.ActiveToken) -> str | None:
        """The narrower scope asked for (RFC 6749 6), or None to keep the
        refresh token's. Within what the refresh token may do by scopes.py's
        rule, so one field of a granted category is within it; scopes not
        ours are ignored (OIDC Core 3.1.2.1), and none of ours is no ask."""
        scope = self.request.payload.scope
        if not scope:  # most refreshes: nothing to parse
            return None
        asked, openid = parse_scopes(scope)
        if not asked and not openid:
            return None
        if within(asked, active.accesses) != asked or (openid and not active.openid):
            raise InvalidScopeError("the scope asked for is wider than the grant allows")
        return scope_string(asked, openid)

    def _validate_token_scope(self, token: Token) -> None:
        # Authlib's compares scope words as strings; _narrowed has decided.
        return None

    def issue_token(self, user: str, refresh_token: Token) -> dict[str, Any]:
        # The access token gets the narrowed scope; save_token keeps the
        # refresh token's own for the next refresh token.
        return self.generate_token(  # type: ignore[no-any-return]
            user=user,
            scope=self.narrowed or refresh_token.get_scope(),
            include_refresh_token=True,
        )

    def authenticate_user(self, refresh_token: Token) -> str | None:
        # The customer's id is all the token generator needs; their row is
        # not loaded (deleting a customer deletes their tokens anyway).
        return refresh_token.row.customer_id

    def revoke_old_credential(self, refresh_token: Token) -> None:
        # Already consumed in authenticate_refresh_token.
        return None


class VendorCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    granted = ""

    def validate_requested_scope(self) -> None:
        asked = (self.request.payload.scope or "").split()
        kept = [s for s in VENDOR_SCOPES if s in asked]
        if len(kept) != len(asked):
            # Customer data is never a vendor's own; a scope that is not
            # ours at all is ignored, as everywhere (scopes.parse_scopes).
            others = " ".join(s for s in asked if s not in VENDOR_SCOPES)
            accesses, openid = parse_scopes(others)
            if accesses or openid:
                kept = []
        if not kept:
            raise InvalidScopeError(
                "client credentials carry only vendor-wide scopes: " + " ".join(VENDOR_SCOPES)
            )
        self.granted = " ".join(kept)

    def generate_token(self, **kwargs: Any) -> dict[str, Any]:
        # What was granted, not what was asked (RFC 6749 5.1 "scope").
        return super().generate_token(**{**kwargs, "scope": self.granted})  # type: ignore[no-any-return]


class OpenIDConnect(OpenIDCode):
    """ID tokens for ``openid`` requests: ES256, key in the JWKS, and a
    pairwise ``sub`` (OIDC Core 8.1) so two vendors cannot link a customer.
    The ID token carries no profile claims; userinfo gives what was granted."""

    def __init__(self, server: Server) -> None:
        super().__init__(require_nonce=False)
        self.server = server

    def exists_nonce(self, nonce: str, request: Request) -> bool:
        found = db().exec(
            select(AuthorizationCode).where(
                AuthorizationCode.vendor_id == request.payload.client_id,
                AuthorizationCode.nonce == nonce,
            )
        )
        return found.first() is not None

    def resolve_client_private_key(self, client: Client) -> ECKey:
        return keys.signing_key(self.server.vault)

    def get_client_algorithm(self, client: Client) -> str:
        return keys.ALG

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": keys.ALG, "typ": "JWT", "kid": keys.signing_key(self.server.vault).kid or ""}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(utcnow().timestamp())
        return {
            "iss": self.server.settings.issuer,
            "aud": [client.get_client_id()],
            "iat": now,
            "exp": now + self.server.settings.access_token_ttl_seconds,
        }

    def get_compatible_claims(self, request: Request) -> dict[str, Any]:
        claims: dict[str, Any] = super().get_compatible_claims(request)
        claims["sub"] = tokens.pairwise_subject(
            self.server.vault, request.client.vendor.id, request.user.id
        )
        return claims

    def generate_user_info(self, user: Customer, scope: str) -> UserInfo:
        return UserInfo()


class PrivateKeyJWT(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 2.2, OIDC Core 9): the vendor signs a
    short-lived assertion with a key whose public half it registered. Each
    assertion works once; the audience must be this server."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: Server) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        issuer = self.server.settings.issuer.rstrip("/")
        return [
            self.server.settings.issuer,
            *(f"{issuer}/oauth/{name}" for name in ("token", "introspect", "revoke")),
        ]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        if not client.vendor.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.vendor.jwks)  # type: ignore[arg-type]

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        # Authlib and joserfc read the header and payload with json.loads,
        # which 1000 nested arrays drive into a RecursionError (a 500, with
        # no client needed). Both go through the one parser for outside
        # JSON first, depth and numbers bounded; what it refuses is a bad
        # assertion. Once they pass, joserfc's own parse is harmless.
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError("not a compact JWS")
            header, claims = (strictjson.loads(_b64url(part)) for part in parts[:2])
        except ValueError:  # strictjson.Rejected, binascii.Error, non-ASCII
            raise InvalidClientError(description="Invalid JWT assertion.") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise InvalidClientError(description="Invalid JWT assertion.")
        return header, claims

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> jwt.Claims:
        # As Authlib's, but only asymmetric algorithms: never HS256 keyed
        # with something public, never "none".
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except JoseError as exc:
            raise InvalidClientError(description=_ascii(exc.description or exc.error)) from None
        self.verify_claims(token.claims)
        return token.claims

    def validate_jti(self, claims: jwt.Claims, jti: Any) -> bool:
        now = utcnow()
        exp = claims.get("exp")
        if not isinstance(jti, str) or not isinstance(exp, int):
            return False
        if exp - int(now.timestamp()) > ASSERTION_MAX_SECONDS:
            raise InvalidClientError(
                description=f"client assertions may live at most {ASSERTION_MAX_SECONDS} s"
            )
        db = conn()
        store.purge_assertions(db, now)
        try:
            store.insert_assertion(
                db,
                vendor_id=str(claims["sub"]),
                jti_hash=hashlib.sha256(jti.encode()).digest(),
                expires_at=datetime.fromtimestamp(exp, UTC),
            )
            commit()
        except IntegrityError:
            rollback()
            return False
        return True


# -- revocation and introspection --------------------------------------------


class _TokenLookup:
    server: Server

    def check_params(self, request: Request, client: Client) -> None:
        # The hint is only a hint: a server that does not find the token
        # under it searches the other types (RFC 7662 2.1, RFC 7009 2.1),
        # and query_token searches them all anyway. Authlib refused an
        # unknown hint with unsupported_token_type and 401, the status of
        # invalid_client; RFC 7009 2.2.1's unsupported_token_type is for a
        # type the server cannot revoke, and it revokes both of its types.
        if "token" not in request.form:
            raise InvalidRequestError("send the token to look up")

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        found = tokens.find_any(conn(), self.server.vault, token_string)
        if found is None:
            return None
        return Token(found.row, found.usable(), found.kind)


class Revocation(_TokenLookup, RevocationEndpoint):
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def revoke_token(self, token: Token, request: Request) -> None:
        if token.kind == "refresh_token":
            # RFC 7009 2.1: revoking a refresh token ends its access tokens too.
            tokens.revoke_family(conn(), token.row.grant_id, token.row.family_id)
        else:
            store.revoke_token(conn(), token.row.id, utcnow())
        commit()


class Introspection(_TokenLookup, IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def check_permission(self, token: Token, client: Client, request: Request) -> bool:
        # A vendor may introspect its own tokens only.
        return token.check_client(client)

    def introspect_token(self, token: Token) -> dict[str, Any]:
        active = token.active
        if active is None:
            return {"active": False}
        row = token.row
        end = row.expires_at if token.kind == "access_token" else row.refresh_expires_at
        body: dict[str, Any] = {
            "active": True,
            "client_id": row.vendor_id,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": active.scope,
            "iat": int(row.issued_at.timestamp()),
            "exp": int(end.timestamp()) if end else None,
            "iss": self.server.settings.issuer,
        }
        grant = active.grant
        if grant is not None and row.customer_id is not None:
            body["sub"] = tokens.pairwise_subject(self.server.vault, row.vendor_id, row.customer_id)
            body["grant_id"] = grant.id
            body["purpose"] = grant.purpose
            if grant.authorization_details is not None:
                body["authorization_details"] = _details(active.accesses, grant)
        return body


# -- the server -------------------------------------------------------------


def _b64url(part: str) -> bytes:
    """A base64url segment of a compact JWS (RFC 7515 2: no padding)."""
    return base64.urlsafe_b64decode(part.encode("ascii") + b"=" * (-len(part) % 4))


def _ascii(text: str) -> str:
    """RFC 6749 error descriptions allow printable ASCII without " and \\."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


def quoted(name: str) -> str:
    """A parameter name the client sent, fit for an error description."""
    return "'" + _ascii(name[:64]) + "'"


class Server(AuthorizationServer):
    def __init__(self, settings: Settings, vault: Vault) -> None:
        super().__init__(scopes_supported=None)
        self.settings = settings
        self.vault = vault
        self.register_token_generator("default", self._generate_token)
        self.register_grant(CodeGrant, [S256Challenge(required=True), OpenIDConnect(self)])
        self.register_grant(RefreshGrant)
        self.register_grant(VendorCredentialsGrant)
        self.register_client_auth_method(PrivateKeyJWT.CLIENT_AUTH_METHOD, PrivateKeyJWT(self))
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    @contextmanager
    def bound(self, session: Session) -> Iterator[None]:
        """Callbacks use ``session`` (the authorization pages)."""
        reset = _db.set(session)
        try:
            yield
        finally:
            _db.reset(reset)

    def run_on(
        self,
        connection: Connection,
        transaction: Transactional,
        work: Callable[..., T],
        *args: Any,
    ) -> T:
        """``work(*args)``, its callbacks on ``connection``, committing and
        rolling back ``transaction`` (the vendor endpoints: the group
        commit's connection and the request's savepoint). A plain call, not
        a context manager: this runs for every vendor call."""
        reset = _conn.set(connection)
        reset_tx = _tx.set(transaction)
        try:
            return work(*args)
        finally:
            _tx.reset(reset_tx)
            _conn.reset(reset)

    def run(self, session: Session, work: Callable[[], T]) -> T:
        with self.bound(session):
            return work()

    # Authlib's hooks ---------------------------------------------------
    def get_authorization_grant(self, request: Request) -> Any:
        try:
            return super().get_authorization_grant(request)
        except UnsupportedResponseTypeError as error:
            # A JAR client (RFC 9101 5, openid-client) sends response_type
            # only inside the request object: name what is not supported.
            refused = _request_object_error(request.payload.data)
            if refused is None:
                raise
            refused.redirect_uri = error.redirect_uri
            raise refused from None

    def query_client(self, client_id: str) -> Client | None:
        vendor = store.vendor(conn(), client_id)
        if vendor is None or vendor.disabled_at is not None:
            return None
        return Client(vendor, self.vault)

    def _generate_token(
        self,
        grant_type: str,
        client: Client,
        user: Customer | str | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        # The id of the row save_token writes: the tokens carry it.
        token_id = _row_id(utcnow())
        token: dict[str, Any] = {
            "token_type": "Bearer",
            "access_token": tokens.new_access_token(token_id),
            "expires_in": expires_in or self.settings.access_token_ttl_seconds,
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = tokens.new_refresh_token(token_id)
        if scope:
            token["scope"] = scope
        return token

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        now = utcnow()
        token_id = tokens.id_of(token["access_token"])
        if token_id is None:  # pragma: no cover - _generate_token made it
            raise RuntimeError("an access token without its row id")
        grant_type = request.payload.grant_type
        grant: Grant | None = None
        customer_id: str | None = None
        refresh_scope: str | None = None
        if grant_type == "authorization_code":
            code: Code = request.authorization_code
            grant = code.grant
            customer_id = code.row.customer_id
            family = family_of(code.row.code_hash)
        elif grant_type == "refresh_token":
            old: Token = request.refresh_token
            grant = old.active.grant if old.active else None
            customer_id = old.row.customer_id
            family = old.row.family_id
            # After a narrowed refresh the next refresh token may still do
            # what the last one could (as the grant allows), not only what
            # this access token may (RFC 6749 6).
            if old.get_scope() != token.get("scope", ""):
                refresh_scope = old.get_scope()
        else:
            family = token_id  # a family of one
        access_end = now + timedelta(seconds=int(token["expires_in"]))
        refresh_end = None
        if grant is not None:
            # No token outlives its grant.
            access_end = min(access_end, grant.expires_at)
            refresh_end = min(
                now + timedelta(seconds=self.settings.refresh_idle_seconds), grant.expires_at
            )
            token["expires_in"] = max(1, int((access_end - now).total_seconds()))
            token["grant_id"] = grant.id
            if grant.authorization_details is not None:
                accesses, _ = parse_scopes(token.get("scope"))
                token["authorization_details"] = _details(accesses, grant)
        refresh = token.get("refresh_token")
        row = {
            "id": token_id,
            "access_hash": self.vault.token_hash(token["access_token"]),
            "refresh_hash": self.vault.token_hash(refresh) if refresh else None,
            "family_id": family,
            "vendor_id": request.client.vendor.id,
            "grant_id": grant.id if grant else None,
            "customer_id": customer_id,
            "scope": token.get("scope", ""),
            "issued_at": now,
            "expires_at": access_end,
            "refresh_expires_at": refresh_end if refresh else None,
            "refresh_scope": refresh_scope if refresh else None,
        }
        store.insert_token(conn(), **row)
        commit()

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        if isinstance(body, dict):
            return JSONAnswer(body, status, headers)
        return Response(body or b"", status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def get_error_uri(self, request: Request, error: OAuth2Error) -> None:
        return None
