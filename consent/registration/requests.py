"""JSON bodies of the registration endpoints, read strictly, and their
answers: the result, or the OAuth error in the RFC 7591 section 3.2.2
format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.requests import JsonPayload, JsonRequest
from authlib.oauth2.rfc7591 import InvalidClientMetadataError
from fastapi import Request
from starlette.datastructures import Headers
from starlette.responses import Response

from consent.oauth.server import Server
from consent.registration.client_metadata import refused
from consent.vendors.errors import InvalidClientMetadata
from consent.vendors.metadata import ClientMetadata
from vrm import strictjson
from vrm.errors import UnsupportedMediaType

Status = tuple[int, Any, list[tuple[str, str]]]


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
        self.payload = _Payload(json_object(body, headers.get("content-type")))
        self.credential = credential
        self.metadata: ClientMetadata | None = None


def json_object(body: bytes, content_type: str | None) -> dict[str, Any]:
    # strictjson: nesting, long numbers, NaN or a bad encoding are refused
    # as invalid_client_metadata (RFC 7591 section 3.2.2), never a 500.
    try:
        data = strictjson.loads_body(body, content_type)
    except strictjson.Rejected:
        data = None
    if not isinstance(data, dict) or not data:
        raise InvalidClientMetadataError("send the client metadata as a JSON object")
    return data


async def json_body(request: Request) -> bytes:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise UnsupportedMediaType("Send the client metadata as application/json.")
    return await request.body()


def answer(server: Server, work: Callable[[], Status]) -> Response:
    """Run ``work`` and render its result or its OAuth error as JSON."""
    try:
        status, body, headers = work()
    except InvalidClientMetadata as exc:
        status, body, headers = refused(exc)()
    except OAuth2Error as error:
        status, body, headers = error()
    response: Response = server.handle_response(status, body, headers)
    return response
