"""RFC 7592: the ``registration_client_uri``, where a vendor reads,
replaces or deletes its registration with its registration access token."""

from __future__ import annotations

import logging
from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from consent.oauth.deps import ServerDep
from consent.oauth.server import Server
from consent.registration.bearer import Registered, RegisteredDep
from consent.registration.client_metadata import (
    REGISTER_PATH,
    client_information,
    client_metadata,
)
from consent.registration.requests import Status, answer, json_body, json_object
from consent.vendors import service as vendors
from vrm.db import SessionDep
from vrm.deps import SettingsDep, VaultDep

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# RFC 7592 section 2.2: an update must not carry these.
SERVER_MEMBERS = (
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
)


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
    body = await json_body(request)

    def work() -> Status:
        data = json_object(body, request.headers.get("content-type"))
        _check_update(data, registered, server)
        metadata = client_metadata(data)
        vendor = vendors.update_registration(session, registered.vendor, metadata=metadata)
        logger.info("vendor %s updated its registration", vendor.id)
        return 200, client_information(settings, vendor, registered.token), default_json_headers

    return await run_in_threadpool(answer, server, work)


@router.delete(REGISTER_PATH + "/{client_id}")
def delete_registration(
    registered: RegisteredDep, session: SessionDep, vault: VaultDep
) -> Response:
    vendors.delete_registration(session, vault, registered.vendor)
    logger.info("vendor %s deleted its registration", registered.vendor.id)
    return Response(status_code=204)
