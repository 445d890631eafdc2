"""The one place the customer's pages are assembled; the composition
(vrm/app.py) calls :func:`install`."""

from __future__ import annotations

from fastapi import FastAPI

from client.web import access, account, documents, history, leaving, recovery, vendors
from client.web.auth import LoginRequired, to_login

# Pages for people, not API: none is in the OpenAPI document.
ROUTERS = (
    account.router,
    documents.router,
    history.router,
    leaving.router,
    recovery.router,
    vendors.router,
    access.router,
)


def install(app: FastAPI) -> None:
    """The pages' routes, and the 303 to the login page a page without a
    session answers."""
    app.add_exception_handler(LoginRequired, to_login)
    for router in ROUTERS:
        app.include_router(router)
