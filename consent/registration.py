"""Dynamic client registration (RFC 7591) and its management (RFC 7592).

``POST /oauth/register``
    Registers a vendor. Open only to holders of an initial access token the
    operator issued (``vrm vendors initial-token``).
``GET | PUT | DELETE /oauth/register/{client_id}``
    The ``registration_client_uri``: read, replace or delete the
    registration, with the registration access token issued with it.

What a vendor may register is decided by
:func:`~consent.vendors.metadata.check_metadata`, the same rules as for
``vrm vendors add`` (https redirect URIs, plain http only on loopback, no
fragments; OAUTH.md item 24). Authlib's ``ClientMetadataClaims`` checks only
URL syntax, so it is not used; its ``ClientRegistrationEndpoint`` drives the
registration itself.

Both tokens are checked by dependencies before the body is read; every
failure is the same 401 with a ``Bearer`` challenge (RFC 6750 section 3.1),
so a token used on another client's, an unknown, a deleted or an
operator-registered client's URI tells nothing. Errors about the metadata
use the RFC 7591 section 3.2.2 JSON format.

Choices where the RFCs leave room:

- ``client_id`` and ``client_secret`` are always the server's (RFC 9700
  section 4.15); values sent by the client are ignored.
- Members we do not use are ignored (RFC 7591 section 2) and left out of
  the response; ``jwks_uri`` is refused, as this server fetches nothing.
- ``client_name`` is required: customers see it when they consent.
- ``grant_types`` defaults to ``["authorization_code"]`` and
  ``response_types`` can only be ``["code"]`` (RFC 7591 section 2).
- PUT replaces the metadata and keeps the credentials; it refuses a move
  between a client secret and ``private_key_jwt``
  (:func:`~consent.vendors.service.update_registration`). The registration
  access token is not rotated.
- DELETE disables the vendor: its tokens stop working at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from authlib.consts import default_json_headers
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749.requests import JsonPayload, JsonRequest
from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint, InvalidClientMetadataError
from fastapi import APIRouter, Depends, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response

from consent.oauth.routes import ServerDep, bearer_token
from consent.oauth.server import Server
from consent.vendors import service as vendors
from consent.vendors.errors import InvalidClientMetadata
from consent.vendors.metadata import ClientMetadata, check_metadata
from consent.vendors.models import Vendor
from vrm import strictjson
from vrm.db import SessionDep
from vrm.deps import SettingsDep, VaultDep
from vrm.errors import Unauthenticated, UnsupportedMediaType
from vrm.settings import Settings

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

REGISTER_PATH = "/oauth/register"
DEFAULT_GRANT_TYPES = ("authorization_code",)  # RFC 7591 section 2
DEFAULT_AUTH_METHOD = "client_secret_basic"
# RFC 7592 section 2.2: an update must not carry these.
SERVER_MEMBERS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)
_STRINGS = ("client_name", "logo_uri", "policy_uri", "notify_uri", "token_endpoint_auth_method")
_STRING_LISTS = ("redirect_uris", "contacts", "grant_types", "response_types")

Status = tuple[int, Any, list[tuple[str, str]]]


# -- authentication ----------------------------------------------------------


class InvalidBearer(Unauthenticated):
    """401 with the RFC 6750 section 3 challenge. Without a token the
    challenge carries no error code (section 3.1)."""

    def __init__(self, detail: str, *, presented: bool) -> None:
        extra = {"error": "invalid_token", "error_description": detail} if presented else {}
        super().__init__(detail, **extra)
        self.presented = presented

    def headers(self) -> dict[str, str]:
        challenge = 'Bearer realm="vrm"'
        if self.presented:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


def initial_access_token(request: Request, session: SessionDep, vault: VaultDep) -> str:
    token = bearer_token(request)
    if token is None:
        raise InvalidBearer("Registration needs an initial access token.", presented=False)
    if not vendors.check_initial_access_token(session, vault, token):
        raise InvalidBearer("The initial access token is not valid.", presented=True)
    return token


@dataclass(frozen=True)
class Registered:
    vendor: Vendor
    token: str


def registered_vendor(
    client_id: str, request: Request, session: SessionDep, vault: VaultDep
) -> Registered:
    token = bearer_token(request)
    if token is None:
        raise InvalidBearer("This needs the registration access token.", presented=False)
    vendor = vendors.get(session, client_id)
    if vendor is None or not vendors.check_registration_token(vault, vendor, token):
        raise InvalidBearer(
            "The registration access token is not valid for this client.", presented=True
        )
    return Registered(vendor=vendor, token=token)


InitialAccessDep = Annotated[str, Depends(initial_access_token)]
RegisteredDep = Annotated[Registered, Depends(registered_vendor)]


# -- metadata ----------------------------------------------------------------


def _ascii(text: str) -> str:
    """RFC 6749 error descriptions allow printable ASCII without " and \\."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "'" for c in text)


def _refused(exc: InvalidClientMetadata) -> OAuth2Error:
    # invalid_redirect_uri or invalid_client_metadata (RFC 7591 3.2.2).
    return OAuth2Error(_ascii(str(exc)), error=exc.oauth_error)


def client_metadata(data: dict[str, Any]) -> ClientMetadata:
    """Check a registration or update body (RFC 7591 section 2) and return
    the metadata to store. A member sent as null counts as left out."""
    if data.get("jwks_uri") is not None:
        raise InvalidClientMetadataError("jwks_uri is not supported: send the public keys as jwks")
    for member in _STRINGS:
        if data.get(member) is not None and not isinstance(data[member], str):
            raise InvalidClientMetadataError(f"{member} must be a string")
    for member in _STRING_LISTS:
        value = data.get(member)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            raise InvalidClientMetadataError(f"{member} must be an array of strings")
    if data.get("jwks") is not None and not isinstance(data["jwks"], dict):
        raise InvalidClientMetadataError("jwks must be a JWK Set (a JSON object)")
    name: str | None = data.get("client_name")
    if name is None:
        raise InvalidClientMetadataError("client_name is required: customers see it to consent")
    grant_types: Sequence[str] | None = data.get("grant_types")
    if grant_types is None:
        grant_types = DEFAULT_GRANT_TYPES
    method: str | None = data.get("token_endpoint_auth_method")
    if method is None:
        method = DEFAULT_AUTH_METHOD
    response_types = data.get("response_types")
    if response_types is not None:
        if set(response_types) != {"code"}:
            raise InvalidClientMetadataError("response_types may only hold code")
        if "authorization_code" not in grant_types:
            # RFC 7591 section 2.1: the two must agree.
            raise InvalidClientMetadataError(
                "response_types code needs the authorization_code grant type"
            )
    try:
        return check_metadata(
            name=name,
            redirect_uris=data.get("redirect_uris") or [],
            logo_uri=data.get("logo_uri"),
            policy_uri=data.get("policy_uri"),
            notify_uri=data.get("notify_uri"),
            contacts=data.get("contacts") or [],
            token_endpoint_auth_method=method,
            grant_types=grant_types,
            jwks=data.get("jwks"),
        )
    except InvalidClientMetadata as exc:
        raise _refused(exc) from None


def public_metadata(metadata: ClientMetadata | Vendor) -> dict[str, Any]:
    """The registered metadata as RFC 7591 names it; empty members left out."""
    body: dict[str, Any] = {
        "client_name": metadata.name,
        "redirect_uris": metadata.redirect_uris,
        "token_endpoint_auth_method": metadata.token_endpoint_auth_method,
        "grant_types": metadata.grant_types,
        "response_types": ["code"] if "authorization_code" in metadata.grant_types else [],
    }
    optional = {
        "logo_uri": metadata.logo_uri,
        "policy_uri": metadata.policy_uri,
        "contacts": metadata.contacts,
        "notify_uri": metadata.notify_uri,
        "jwks": metadata.jwks,
    }
    body.update({k: v for k, v in optional.items() if v})
    return body


def client_information(
    settings: Settings, vendor: Vendor, registration_token: str
) -> dict[str, Any]:
    """RFC 7591 section 3.2.1 and RFC 7592 section 3, without the client
    secret, which only the registration response carries."""
    body = {
        "client_id": vendor.id,
        "client_id_issued_at": int(vendor.created_at.timestamp()),
        **public_metadata(vendor),
        "registration_access_token": registration_token,
        "registration_client_uri": f"{settings.issuer.rstrip('/')}{REGISTER_PATH}/{vendor.id}",
    }
    if vendor.secret_hash is not None:
        body["client_secret_expires_at"] = 0  # secrets do not expire
    return body


# -- requests ------------------------------------------------------------------


class _Payload(JsonPayload):  # type: ignore[misc]
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @property
    def data(self) -> dict[str, Any]:
        return self._data


class MetadataRequest(JsonRequest):  # type: ignore[misc]
    """A JSON request as Authlib's registration endpoint reads it."""

    def __init__(self, method: str, uri: str, headers: Headers, body: bytes, credential: str):
        super().__init__(method, uri, headers)
        self.payload = _Payload(_json_object(body, headers.get("content-type")))
        self.credential = credential
        self.metadata: ClientMetadata | None = None


def _json_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    # strictjson: nesting, long numbers, NaN or a bad encoding are refused
    # as invalid_client_metadata (RFC 7591 section 3.2.2), never a 500.
    try:
        data = strictjson.loads_body(body, content_type)
    except strictjson.Rejected:
        data = None
    if not isinstance(data, dict) or not data:
        raise InvalidClientMetadataError("send the client metadata as a JSON object")
    return data


async def _json_body(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("Send the client metadata as application/json.")
    return await request.body()


def _answer(server: Server, work: Callable[[], Status]) -> Response:
    """Run ``work`` and render its result or its OAuth error as JSON."""
    try:
        status, body, headers = work()
    except InvalidClientMetadata as exc:
        status, body, headers = _refused(exc)()
    except OAuth2Error as error:
        status, body, headers = error()
    response: Response = server.handle_response(status, body, headers)
    return response


# -- RFC 7591 ----------------------------------------------------------------


class Registration(ClientRegistrationEndpoint):  # type: ignore[misc]
    """Authlib's registration flow; the vendor registry chooses the
    credentials when it stores the vendor."""

    def __init__(self, server: Server, session: Session) -> None:
        super().__init__(server)
        self.session = session

    def authenticate_token(self, request: MetadataRequest) -> str:
        # Checked by the route's initial_access_token dependency.
        return request.credential

    def extract_client_metadata(self, request: MetadataRequest) -> dict[str, Any]:
        request.metadata = client_metadata(request.payload.data)
        return public_metadata(request.metadata)

    def generate_client_info(self, request: MetadataRequest) -> dict[str, Any]:
        # Nothing from the client, nothing generated here: the id and the
        # secret come from vendors.register_dynamic (RFC 9700 4.15).
        return {}

    def save_client(
        self, client_info: dict[str, Any], client_metadata: dict[str, Any], request: MetadataRequest
    ) -> vendors.DynamicRegistration:
        assert request.metadata is not None  # noqa: S101 - set by extract_client_metadata
        registration = vendors.register_dynamic(
            self.session, self.server.vault, metadata=request.metadata
        )
        logger.info("vendor %s registered itself", registration.vendor.id)
        return registration

    def generate_client_registration_info(
        self, client: vendors.DynamicRegistration, request: MetadataRequest
    ) -> dict[str, Any]:
        info = client_information(self.server.settings, client.vendor, client.registration_token)
        if client.client_secret is not None:
            info["client_secret"] = client.client_secret
        return info


@router.post(REGISTER_PATH)
async def register(
    request: Request,
    token: InitialAccessDep,
    server: ServerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    body = await _json_body(request)
    uri = settings.issuer.rstrip("/") + REGISTER_PATH
    endpoint = Registration(server, session)

    def work() -> Status:
        oreq = MetadataRequest("POST", uri, request.headers, body, token)
        result: Status = endpoint.create_registration_response(oreq)
        return result

    return await run_in_threadpool(_answer, server, work)


# -- RFC 7592 ----------------------------------------------------------------


@router.get(REGISTER_PATH + "/{client_id}")
def read_registration(
    registered: RegisteredDep, server: ServerDep, settings: SettingsDep
) -> Response:
    body = client_information(settings, registered.vendor, registered.token)
    response: Response = server.handle_response(200, body, default_json_headers)
    return response


def _check_update(data: dict[str, Any], registered: Registered, server: Server) -> None:
    """RFC 7592 section 2.2: the body names this client, carries none of the
    server's members, and a client_secret in it must be the current one."""
    present = [name for name in SERVER_MEMBERS if name in data]
    if present:
        raise InvalidRequestError(f"{present[0]} must not be sent in an update")
    if data.get("client_id") != registered.vendor.id:
        raise InvalidRequestError("client_id must be sent and be this client's id")
    secret = data.get("client_secret")
    if secret is not None and not (
        isinstance(secret, str) and vendors.check_secret(server.vault, registered.vendor, secret)
    ):
        raise InvalidRequestError("client_secret is not this client's current secret")


@router.put(REGISTER_PATH + "/{client_id}")
async def update_registration(
    request: Request,
    registered: RegisteredDep,
    server: ServerDep,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    body = await _json_body(request)

    def work() -> Status:
        data = _json_object(body, request.headers.get("content-type"))
        _check_update(data, registered, server)
        metadata = client_metadata(data)
        vendor = vendors.update_registration(session, registered.vendor, metadata=metadata)
        logger.info("vendor %s updated its registration", vendor.id)
        return 200, client_information(settings, vendor, registered.token), default_json_headers

    return await run_in_threadpool(_answer, server, work)


@router.delete(REGISTER_PATH + "/{client_id}")
def delete_registration(registered: RegisteredDep, session: SessionDep) -> Response:
    vendors.delete_registration(session, registered.vendor)
    logger.info("vendor %s deleted its registration", registered.vendor.id)
    return Response(status_code=204)
