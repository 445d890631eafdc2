"""create_app(): the FastAPI app, its state, handlers, middleware and routers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from client.web import routes as web_pages
from consent.audit import auditors as audit_auditors
from consent.audit import customer as audit_customer
from consent.audit import tree as audit_tree
from consent.audit.routes import router as audit_router
from consent.grants import export as grants_export
from consent.grants.routes import router as grants_router
from consent.login import router as login_router
from consent.oauth import first_party
from consent.oauth.routes import router as oauth_router
from consent.oauth.server import Server as OAuthServer
from consent.registration import router as registration_router
from vrm import __version__, apidocs, background, headers, hooks, lean, openapi
from vrm.accounts.passwords import Passwords
from vrm.api import api_router
from vrm.crypto.keystore import FileKeyStore, KeyStore
from vrm.db import make_engine, start_checkpoints
from vrm.keys import server as server_keys
from vrm.keys.service import Vault
from vrm.middleware import BodyLimitMiddleware, JSONOnlyMiddleware, StrictJSONMiddleware
from vrm.problems import install_handlers
from vrm.settings import Settings, get_settings
from vrm.storage import groupcommit
from vrm.vendor_api import export as vendor_export
from vrm.vendor_api.routes import deposit_router, feed_router


class App(FastAPI):
    """The FastAPI app, with the vendors' busiest calls in front of it.

    The token, revocation and introspection endpoints and the data reads
    are small ASGI apps of their own (consent/oauth/endpoints.py,
    vrm/vendor_api/reads.py). Their requests skip FastAPI's and Starlette's
    middleware stack (error handling, telemetry hooks, routing: a good part
    of a token request's cost, docs/performance.md#the-lean-vendor-paths)
    and go through only what they need:
    the body limit, and a 500 problem for an unexpected error. The same
    apps are also FastAPI routes, which answer the other methods: both
    are built from one table (vrm/lean.py).

    Every HTTP answer, lean or routed, gets its security headers here
    (vrm/headers.py): the one seam that every path goes through."""

    # Each lean app inside the body limit, which also guards its errors.
    wrapped: dict[ASGIApp, ASGIApp]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        send = headers.adding(scope["path"], send)
        found = lean.lean_app(scope)
        if found is not None:
            scope["app"] = self
            scope["path_params"] = found[1]
            await self.wrapped[found[0]](scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, keystore: KeyStore | None = None) -> App:
    settings = settings or get_settings()
    if keystore is None:
        keystore = FileKeyStore(settings.key_dir_resolved, cache_seconds=settings.key_cache_seconds)
    engine = make_engine(settings)
    try:
        # Creates nothing: a lost server key is an operator's to restore
        # (vrm/keys/server.py); keys are made only by `vrm init`.
        server_keys.load(keystore, engine)
    except server_keys.ServerKeyError:
        engine.dispose()
        raise
    # The store's own client (the vrm-me CLI), once per database.
    first_party.register(engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        checkpoints = start_checkpoints(engine)
        jobs = (
            background.start(engine, settings, keystore, app.state.vault)
            if settings.background_jobs
            else None
        )
        # What start-up made lives as long as the server: out of the garbage
        # collector's sight, a full collection walks only what requests made,
        # and no longer stalls every connection for tens of milliseconds
        # (docs/performance.md#history-reads).
        gc.freeze()
        yield
        gc.unfreeze()
        if jobs is not None:
            jobs.stop()
        if checkpoints is not None:
            checkpoints.stop()
        groupcommit.close(app.state)
        engine.dispose()

    app = App(
        title="VRM personal data store",
        version=__version__,
        description="Your data, held by you; vendors get what you grant and nothing more.",
        lifespan=lifespan,
        # Served from this origin instead (vrm/apidocs.py).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.vault = Vault(
        keystore,
        cache_seconds=settings.key_cache_seconds,
        derived_bytes=settings.derived_cache_mib * 1024 * 1024,
    )
    app.state.passwords = Passwords(settings)
    app.state.oauth = OAuthServer(settings, app.state.vault)
    app.state.audit_signer = audit_tree.signer(settings, keystore.server_key(audit_tree.KEY_NAME))
    # What the layers above the store add to the customer's export (vrm/export).
    app.state.export_sections = {
        **grants_export.SECTIONS,
        **vendor_export.SECTIONS,
        **audit_customer.SECTIONS,
    }
    # And what they do when an account is erased (vrm/hooks.py).
    app.state.on_erase = hooks.ON_ERASE
    # And when a customer's root key moves to them at log-in.
    app.state.on_keys_moved = hooks.ON_KEYS_MOVED
    # Who a bearer token on the customer API stands for (vrm.deps.current_customer):
    # the first-party client's tokens only.
    app.state.bearer_customer = first_party.customer_of
    # Routes read settings from app.state (vrm.deps.app_settings), not via
    # dependency_overrides: while any override is set, FastAPI rebuilds the
    # dependency graph on every request (docs/performance.md#the-routed-paths).
    install_handlers(app)
    app.wrapped = {
        entry.app: BodyLimitMiddleware(entry.app, limit=settings.max_body_bytes, guard_errors=True)
        for entry in lean.TABLE
    }
    app.add_middleware(StrictJSONMiddleware)
    app.add_middleware(JSONOnlyMiddleware)
    # Outermost of the stack, and the last word on errors, as for the lean
    # apps: Starlette's ServerErrorMiddleware would answer with the same 500
    # but then re-raise, and the server would log the traceback again and
    # close the keep-alive connection.
    app.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, guard_errors=True)
    # The lean endpoints first: routes match in order, and they are what
    # vendors call most.
    app.router.routes.extend(lean.ROUTES)
    app.include_router(oauth_router)
    app.include_router(api_router)
    app.include_router(grants_router)
    app.include_router(registration_router)
    app.include_router(login_router)
    # The customer's pages (client/web): home, account, their data.
    web_pages.install(app)
    app.include_router(deposit_router)
    app.include_router(feed_router)
    app.include_router(audit_router)
    app.include_router(audit_customer.router)
    app.include_router(audit_auditors.router)

    apidocs.install(app)
    openapi.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
