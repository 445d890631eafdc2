"""RFC 7591: a vendor registers itself with an initial access token."""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc7591 import ClientRegistrationEndpoint
from fastapi import APIRouter, Request
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consent.oauth.deps import ServerDep
from consent.oauth.server import Server
from consent.registration.bearer import InitialAccessDep
from consent.registration.client_metadata import (
    REGISTER_PATH,
    client_information,
    client_metadata,
    public_metadata,
)
from consent.registration.requests import MetadataRequest, Status, answer, json_body
from consent.vendors import service as vendors
from vrm.db import SessionDep
from vrm.deps import SettingsDep

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


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
    body = await json_body(request)
    uri = settings.issuer.rstrip("/") + REGISTER_PATH
    endpoint = Registration(server, session)

    def work() -> Status:
        oreq = MetadataRequest("POST", uri, request.headers, body, token)
        result: Status = endpoint.create_registration_response(oreq)
        return result

    return await run_in_threadpool(answer, server, work)
