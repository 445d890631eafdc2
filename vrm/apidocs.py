"""``/docs``: Swagger UI, served from this origin.

FastAPI's own pages load their scripts from a public CDN without subresource
integrity, on the origin of the session cookie: whoever controls that CDN
could run script as any customer who opens the docs. Here the script, style
and icon come from the ``fastapi-offline`` package (Swagger UI 5;
``swagger-ui-bundle`` on PyPI ships Swagger UI 4, which cannot render
OpenAPI 3.1), under ``/docs/assets``, and the page has the strict headers of
the login and consent pages (``consent.pages.page``): a nonce for each
answer, nothing loaded from elsewhere, no framing. Swagger UI's validator
badge, which would send the document's URL to validator.swagger.io, is off.

There is no ``/redoc``: ReDoc 2 always loads its logo from cdn.redoc.ly and
adds style elements without the nonce, so it would need the policy loosened
(``'unsafe-inline'`` styles, an image host) for a second view of the same
document (tests/vrm/test_apidocs.py saw both in Chromium).
"""

from __future__ import annotations

import html
import json
import secrets
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from starlette.responses import FileResponse, HTMLResponse

from consent.pages import page
from vrm.errors import NotFound

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSETS_PATH = "/docs/assets"
# What the page loads, and nothing else of the package's.
ASSET_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"})

_SWAGGER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{title}</title>
<link rel="icon" href="{assets}/favicon.png" nonce="{nonce}">
<link rel="stylesheet" href="{assets}/swagger-ui.css" nonce="{nonce}">
</head><body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js" nonce="{nonce}"></script>
<script nonce="{nonce}">
SwaggerUIBundle({{url: {openapi}, dom_id: "#swagger-ui", validatorUrl: null,
  deepLinking: true, presets: [SwaggerUIBundle.presets.apis]}});
</script>
</body></html>
"""


def _docs_page(template: str, request: Request) -> HTMLResponse:
    app = request.app
    root = request.scope.get("root_path", "")
    nonce = secrets.token_urlsafe(16)
    text = template.format(
        title=html.escape(app.title),
        assets=root + ASSETS_PATH,
        nonce=nonce,
        # A JSON string inside a script element: "</" cannot end it early.
        openapi=json.dumps(root + app.openapi_url).replace("</", "<\\/"),
    )
    return page(text, nonce, scripts=True, images="'self' data:")


def install(app: FastAPI) -> None:
    """Add the page and its assets to ``app``, which was made with
    ``docs_url=None`` and ``redoc_url=None`` (FastAPI's CDN pages off)."""

    @app.get(ASSETS_PATH + "/{name}", include_in_schema=False)
    def asset(name: str) -> FileResponse:
        if name not in ASSET_FILES:
            raise NotFound("No such file.")
        return FileResponse(ASSETS / name)

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return _docs_page(_SWAGGER, request)
