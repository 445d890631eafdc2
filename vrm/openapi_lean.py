"""The operations FastAPI cannot describe, added to the OpenAPI document.

The vendor data reads (``GET /v1/data``, vrm/vendor_api/reads.py) and the
OAuth endpoints (the lean token, revocation and introspection app, and the
routes of consent/oauth/ and consent/registration/, which answer
in the RFC 6749 and RFC 7591 formats rather than problem details) are not
FastAPI operations FastAPI could document. This fragment describes them
from the same sources the code reads: the read's query model
(``HistoryQuery``), the catalogue's categories, the lean app's ``PATHS``,
and, for the OAuth routes, the routes the app actually has, so that a route
added or removed there changes the document too.
"""

from __future__ import annotations

from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Route

from vrm.catalogue import CATEGORIES
from vrm.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
    problem_answer,
)
from vrm.feed.retention import CursorExpired

OAUTH_TAG = "OAuth 2.0 and OpenID Connect"
OAUTH_PREFIXES = ("/oauth/", "/.well-known/")
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "title": "OAuthError",
    "description": "RFC 6749 5.2 (and RFC 7591 3.2.2) error response.",
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
_JSON = {"application/json": {"schema": {"type": "object"}}}
_OAUTH_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/OAuthError"}}}
_CLIENT_AUTH = {
    # RFC 6749 2.3.1 (or HTTP Basic), RFC 7523 2.2.
    "client_id": {"type": "string"},
    "client_secret": {"type": "string"},
    "client_assertion_type": {"type": "string"},
    "client_assertion": {"type": "string"},
}
_TOKEN_HINT = {
    "token": {"type": "string"},
    "token_type_hint": {"type": "string", "enum": ["access_token", "refresh_token"]},
    **_CLIENT_AUTH,
}
# The form of each lean OAuth endpoint (consent/oauth/endpoints.py PATHS).
FORMS: dict[str, tuple[str, dict[str, Any]]] = {
    "/oauth/token": (
        "Issue tokens (RFC 6749 4.1.3, 4.4, 6; PKCE RFC 7636).",
        {
            "grant_type": {
                "type": "string",
                "enum": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                    "urn:ietf:params:oauth:grant-type:device_code",
                ],
            },
            "code": {"type": "string"},
            "device_code": {"type": "string"},
            "redirect_uri": {"type": "string"},
            "code_verifier": {"type": "string"},
            "refresh_token": {"type": "string"},
            "scope": {"type": "string"},
            **_CLIENT_AUTH,
        },
    ),
    "/oauth/revoke": ("Revoke a token (RFC 7009).", _TOKEN_HINT),
    "/oauth/introspect": ("Introspect a token (RFC 7662).", _TOKEN_HINT),
    "/oauth/device_authorization": (
        "Start a device login (RFC 8628 3.1): the store's own client, vrm-me, only.",
        {"client_id": {"type": "string"}, "scope": {"type": "string"}},
    ),
}


def _answers(*errors: type[Any]) -> dict[str, Any]:
    return {str(e.status): problem_answer(e.title) for e in errors}


def data_reads() -> dict[str, Any]:
    """``GET /v1/data``, ``/v1/data/{category}`` and the incremental
    ``/v1/data/history``, with their problem answers."""
    from vrm.vendor_api.reads import HistoryQuery

    read = {
        "200": {"description": "What the grant lets you see", "content": _JSON},
        "304": {"description": "Not modified since the ETag sent in If-None-Match"},
        **_answers(Unauthenticated, Forbidden),
    }
    query = [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in HistoryQuery.model_json_schema()["properties"].items()
    ]
    tags = ["vendor data"]
    return {
        "/v1/data": {
            "get": {
                "tags": tags,
                "summary": "Every category the token may read",
                "operationId": "read_data",
                "parameters": [],
                "responses": read,
            }
        },
        "/v1/data/history": {
            "get": {
                "tags": tags,
                "summary": "The history; with since or limit, what changed, in order",
                "operationId": "read_history",
                "parameters": query,
                # A cursor we did not give out (400) or too old (410).
                "responses": {**read, **_answers(BadRequest, CursorExpired, ValidationFailed)},
            }
        },
        "/v1/data/{category}": {
            "get": {
                "tags": tags,
                "summary": "One category",
                "operationId": "read_category",
                "parameters": [
                    {
                        "name": "category",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": sorted(CATEGORIES)},
                    },
                ],
                "responses": {**read, **_answers(NotFound)},
            }
        },
    }


def _oauth_operation(path: str, method: str, route: Route) -> dict[str, Any]:
    """An OAuth route, described by what kind of endpoint it is."""
    doc = (route.endpoint.__doc__ or "").strip().split("\n\n")[0]
    operation: dict[str, Any] = {
        "tags": [OAUTH_TAG],
        "summary": " ".join(doc.split()) or path,
        "operationId": f"oauth_{method}_{path.strip('/').replace('/', '_').replace('.', '')}",
    }
    errors = {"400": {"description": "RFC 6749 5.2 error", "content": _OAUTH_ERROR}}
    unauthenticated = {
        "401": {"description": "Client authentication failed", "content": _OAUTH_ERROR}
    }
    if path in FORMS:
        summary, fields = FORMS[path]
        operation["summary"] = summary
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": fields}
                }
            },
        }
        operation["responses"] = {
            "200": {"description": "OK", "content": _JSON},
            **errors,
            **unauthenticated,
        }
    elif path.startswith("/oauth/authorize"):
        operation["responses"] = {
            "200": {"description": "The login or consent page", "content": {"text/html": {}}},
            "303": {"description": "Back to the client with a code or an error (RFC 6749 4.1.2)"},
            "400": {
                "description": "An error page: no redirect to an unknown client (RFC 6749 4.1.2.1)",
                "content": {"text/html": {}},
            },
        }
    elif path.startswith("/oauth/register"):
        if method in ("post", "put"):
            operation["requestBody"] = {"required": True, "content": _JSON}
        ok = {"post": "201", "delete": "204"}.get(method, "200")
        operation["responses"] = {
            ok: {
                "description": "Client information (RFC 7591 3.2.1, RFC 7592 2)",
                **({} if ok == "204" else {"content": _JSON}),
            },
            **errors,
            **unauthenticated,
        }
    else:
        operation["responses"] = {"200": {"description": "OK", "content": _JSON}}
        if path == "/oauth/userinfo":
            operation["responses"]["401"] = {
                "description": "No valid access token (RFC 6750 3.1)",
                "content": _OAUTH_ERROR,
            }
    if "{client_id}" in path:
        operation["parameters"] = [
            {"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"}}
        ]
    return operation


def oauth_endpoints(routes: list[BaseRoute]) -> dict[str, Any]:
    """Every OAuth route of the app, each method an operation."""
    paths: dict[str, Any] = {}
    for context in iter_route_contexts(routes):
        path = context.path_format
        route = context.original_route
        if path is None or not isinstance(route, Route) or not path.startswith(OAUTH_PREFIXES):
            continue
        for method in sorted((context.methods or set()) - {"HEAD"}):
            paths.setdefault(path, {})[method.lower()] = _oauth_operation(
                path, method.lower(), route
            )
    return paths


def add_lean(routes: list[BaseRoute], document: dict[str, Any]) -> None:
    document["paths"].update(data_reads())
    document["paths"].update(oauth_endpoints(routes))
    document["components"]["schemas"]["OAuthError"] = OAUTH_ERROR_SCHEMA
