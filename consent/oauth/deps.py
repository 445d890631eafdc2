"""What the authorization server's routes depend on."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from consent.oauth.server import Server


def get_server(request: Request) -> Server:
    server: Server = request.app.state.oauth
    return server


ServerDep = Annotated[Server, Depends(get_server)]
