"""The two bearer tokens of dynamic registration: the operator's initial
access token (RFC 7591 3) and a client's registration access token (RFC
7592 1), each checked by a dependency before the body is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from consent.oauth.bearer import challenge, token_of
from consent.vendors import service as vendors
from consent.vendors.models import Vendor
from vrm.db import SessionDep
from vrm.deps import VaultDep
from vrm.errors import Unauthenticated


class InvalidBearer(Unauthenticated):
    """401 with the RFC 6750 section 3 challenge. Without a token the
    challenge carries no error code (section 3.1)."""

    def __init__(self, detail: str, *, presented: bool) -> None:
        extra = {"error": "invalid_token", "error_description": detail} if presented else {}
        super().__init__(detail, **extra)
        self.presented = presented

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": challenge("invalid_token" if self.presented else None)}


def initial_access_token(request: Request, session: SessionDep, vault: VaultDep) -> str:
    token = token_of(request.headers)
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
    token = token_of(request.headers)
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
