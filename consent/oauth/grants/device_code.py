"""The device authorization grant (RFC 8628), for the store's own client.

``vrm-me login`` asks the device authorization endpoint (3.1) for a device
code and a user code, shows the customer the user code and the device page
(``/device``, consent/oauth/device_page.py), and polls the token endpoint
(3.4) until the customer has answered there. Authlib's endpoint and grant
do the protocol; here are our rules:

- only a first-party public client may take part (consent/oauth/first_party.py),
  and only for its own scope;
- the user code is RFC 8628 6.1's: 8 characters of ``BCDFGHJKLMNPQRSTVWXZ``
  (Authlib's), shown as ``XXXX-XXXX`` and read back whatever the case and
  dashes (:func:`normalise_user_code`);
- both codes are kept as keyed hashes (``Vault.token_hash``), never in the
  clear, and expire after ``VRM_DEVICE_CODE_TTL_SECONDS`` (10 minutes);
- a poll sooner than the interval is answered ``slow_down`` and adds 5 s
  to the interval for every later poll (3.5);
- an approved device code is consumed atomically: it gives tokens once,
  and a second use is refused (``invalid_grant``) and revokes what the
  first one issued, as for an authorization code.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from authlib.common.urls import add_params_to_uri
from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import (
    AccessDeniedError,
    InvalidGrantError,
    InvalidScopeError,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc8628 import (
    DEVICE_CODE_GRANT_TYPE,
    AuthorizationPendingError,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialMixin,
    ExpiredTokenError,
    SlowDownError,
)

from consent.oauth import first_party, rows, store, tokens
from consent.oauth.authlib_models import Client
from consent.oauth.grants.authorization_code import family_of
from consent.oauth.models import DeviceAuthorization
from consent.oauth.requests import Request
from consent.policy import CLIENT_SCOPES
from vrm.accounts.models import Customer
from vrm.crypto import aead
from vrm.dbtypes import utcnow
from vrm.keys import custody

if TYPE_CHECKING:
    from consent.oauth.server import Server

USER_CODE_ALPHABET = frozenset("BCDFGHJKLMNPQRSTVWXZ")
USER_CODE_LENGTH = 8
# RFC 8628 3.5: each slow_down adds this to the interval.
SLOW_DOWN_SECONDS = 5
DEVICE_PAGE = "/device"


def normalise_user_code(entered: str) -> str | None:
    """The user code as stored (8 upper-case letters), from what the
    customer typed: case, dashes and spaces do not matter (RFC 8628 6.1);
    None if it cannot be a user code at all."""
    code = "".join(c for c in entered.upper() if c not in "- \t")
    if len(code) != USER_CODE_LENGTH or not USER_CODE_ALPHABET.issuperset(code):
        return None
    return code


def shown(user_code: str) -> str:
    """``XXXX-XXXX``, as the device shows it."""
    return f"{user_code[:4]}-{user_code[4:]}"


def _client_scope(client: Client, asked: str | None) -> str:
    """The client's own scopes asked for (all of them when none is named);
    invalid_scope for anything else."""
    own = CLIENT_SCOPES[client.vendor.role]
    words = (asked or "").split()
    if any(word not in own for word in words):
        raise InvalidScopeError("this client may ask only for: " + " ".join(own))
    return " ".join(words) if words else " ".join(own)


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    """RFC 8628 3.1 and 3.2, at ``POST /oauth/device_authorization``."""

    CLIENT_AUTH_METHODS = ["none"]
    server: Server

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.EXPIRES_IN = server.settings.device_code_ttl_seconds
        self.INTERVAL = server.settings.device_poll_interval_seconds

    def authenticate_client(self, request: Request) -> Client:
        client: Client = super().authenticate_client(request)
        if client.vendor.role != first_party.ROLE or not client.check_grant_type(
            DEVICE_CODE_GRANT_TYPE
        ):
            raise UnauthorizedClientError("only the store's own client uses the device grant")
        return client

    def create_endpoint_response(self, request: Request) -> tuple[int, dict[str, Any], Any]:
        # Authlib's (3.1, 3.2), with the scope checked against the client's
        # own and the codes stored with the request's transaction, which its
        # save_device_credential is not given.
        client = self.authenticate_client(request)
        scope = _client_scope(client, request.payload.scope)
        device_code = self.generate_device_code()
        user_code = normalise_user_code(self.generate_user_code())
        if user_code is None:  # pragma: no cover - Authlib's alphabet is 6.1's
            raise RuntimeError("a user code outside RFC 8628 6.1's alphabet")
        now = utcnow()
        vault = self.server.vault
        store.insert_device(
            request.tx.conn,
            device_hash=vault.token_hash(device_code),
            user_code_hash=vault.token_hash(user_code),
            vendor_id=client.get_client_id(),
            scope=scope,
            interval=self.INTERVAL,
            created_at=now,
            expires_at=now + timedelta(seconds=self.EXPIRES_IN),
            root_key=custody.device_public_key(device_code),
        )
        request.tx.commit()
        uri = self.get_verification_uri()
        body = {
            "device_code": device_code,
            "user_code": shown(user_code),
            "verification_uri": uri,
            "verification_uri_complete": add_params_to_uri(uri, [("user_code", shown(user_code))]),
            "expires_in": self.EXPIRES_IN,
            "interval": self.INTERVAL,
        }
        return 200, body, default_json_headers

    def get_verification_uri(self) -> str:
        return self.server.settings.issuer.rstrip("/") + DEVICE_PAGE


class Credential(DeviceCredentialMixin):
    """A device authorization row as Authlib's grant wants to see it."""

    def __init__(self, row: DeviceAuthorization) -> None:
        self.row = row
        # The customer-held root key its seal held, once opened
        # (consent/oauth/first_party.py): for the token row.
        self.root: bytes | None = None

    def get_client_id(self) -> str:
        return self.row.vendor_id

    def get_scope(self) -> str:
        return self.row.scope

    def get_user_code(self) -> str:  # pragma: no cover - never stored in the clear
        raise NotImplementedError("user codes are kept as hashes only")

    def is_expired(self) -> bool:
        return self.row.expires_at <= utcnow()


class DeviceGrant(DeviceCodeGrant):
    """RFC 8628 3.4 and 3.5 at the token endpoint."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]
    server: Server

    def query_device_credential(self, device_code: str) -> Credential:
        row = store.device(self.request.tx.conn, self.server.vault.token_hash(device_code))
        if row is None:
            raise InvalidGrantError("unknown device_code")
        return Credential(row)

    def validate_device_credential(self, credential: Credential) -> Customer:
        tx = self.request.tx
        row = credential.row
        now = utcnow()
        if row.used_at is not None:
            # A second exchange: refused, and what the first one issued is
            # revoked (one of the two holders should not have the code).
            tokens.revoke_family(
                tx.conn,
                vendor_id=row.vendor_id,
                customer_id=row.customer_id,
                grant_id=None,
                family_id=family_of(row.device_hash),
                reason="reuse",
                reused="device_code",
            )
            tx.commit()
            raise InvalidGrantError("the device_code was used already")
        if credential.is_expired():
            raise ExpiredTokenError("the device_code expired: run the login again")
        if row.approved is False:
            raise AccessDeniedError("the customer denied the request")
        if row.approved and row.customer_id is not None:
            try:
                credential.root = first_party.device_root(
                    row, self.request.payload.data["device_code"]
                )
            except aead.SealError:
                raise InvalidGrantError("the device_code is not valid") from None
            customer = rows.customer(tx.conn, row.customer_id)
            if customer is None or not store.consume_device(tx.conn, row.device_hash, now):
                raise InvalidGrantError("the device_code was used already")
            # Not committed: the use and the token are one transaction
            # (save_token commits).
            return customer
        if row.polled_at is not None and now - row.polled_at < timedelta(seconds=row.interval):
            store.polled(tx.conn, row.device_hash, now, row.interval + SLOW_DOWN_SECONDS)
            tx.commit()
            raise SlowDownError(f"poll at most every {row.interval + SLOW_DOWN_SECONDS} seconds")
        store.polled(tx.conn, row.device_hash, now, row.interval)
        tx.commit()
        raise AuthorizationPendingError("the customer has not answered yet")
