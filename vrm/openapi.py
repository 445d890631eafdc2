"""The OpenAPI document lists the problem answers each operation can give.

FastAPI documents a 422 in its own shape and nothing else. Here every
operation's 4xx answers are derived from what the operation is made of,
so that the document follows the code instead of a table beside it:

- its dependencies, at any depth, marked with ``vrm.errors.raises`` (every
  route behind the session dependency can give 401, every vendor route 401
  and 403);
- its body: 400 for a body that is not JSON, 413 over the body limit, 415
  where the body must be JSON (``vrm.middleware.json_only``), 422 for one
  that fails its schema; its parameters: 422; an ``If-Match`` header: 412
  (``vrm.etags``);
- what its handler raises itself, declared on the route with
  ``responses=vrm.errors.problems(...)``.

Each is an RFC 9457 problem, ``application/problem+json``, with the
``Problem`` schema. 405 belongs to a path rather than an operation (its
``Allow`` lists the path's methods) and 500 to no operation in particular,
so neither is listed.

The operations FastAPI does not see (the lean ``/v1/data`` reads and the
OAuth endpoints) are added by vrm/openapi_lean.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from vrm.errors import (
    MALFORMED_JSON,
    PayloadTooLarge,
    PreconditionFailed,
    UnsupportedMediaType,
    ValidationFailed,
    problem_answer,
)
from vrm.middleware import json_only
from vrm.openapi_lean import add_lean

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details.",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "urn:vrm:problem:<slug> or about:blank"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "422 only: each field that failed, never its value.",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": ["string", "null"]},
                },
            },
        },
        "retry_after": {"type": "integer", "description": "429 only: seconds to wait."},
        "current_etag": {"type": "string", "description": "412 only: the current ETag."},
    },
    "additionalProperties": True,
}


def _tree(dependant: Dependant) -> Iterator[Dependant]:
    """The operation and its dependencies, at any depth."""
    yield dependant
    for dependency in dependant.dependencies:
        yield from _tree(dependency)


def derived(dependant: Dependant, method: str, path: str) -> dict[int, set[str]]:
    """Status -> titles of the problems an operation can give by what it is
    made of (see the module docstring)."""
    found: dict[int, set[str]] = {}

    def add(status: int, title: str) -> None:
        found.setdefault(status, set()).add(title)

    tree = list(_tree(dependant))
    for part in tree:
        for error in getattr(part.call, "__problems__", ()):
            add(error.status, error.title)
    body = [p for part in tree for p in part.body_params]
    headers = [p for part in tree for p in part.header_params]
    params = [
        p
        for part in tree
        for p in (*part.path_params, *part.query_params, *part.cookie_params, *part.header_params)
    ]
    if body:
        add(400, MALFORMED_JSON)
        add(PayloadTooLarge.status, PayloadTooLarge.title)
        if json_only(method, path):
            add(UnsupportedMediaType.status, UnsupportedMediaType.title)
    if body or any(_can_fail(p) for p in params):
        add(ValidationFailed.status, ValidationFailed.title)
    if any(p.alias.lower() == "if-match" for p in headers):
        add(PreconditionFailed.status, PreconditionFailed.title)
    return found


def _can_fail(param: Any) -> bool:
    """Whether a parameter can fail validation: any but a plain string
    without constraints (an id in the path, say)."""
    info = param.field_info
    return info.annotation not in (str, str | None) or bool(info.metadata)


def document_problems(app: FastAPI, document: dict[str, Any]) -> None:
    """Add to ``document`` (``app``'s OpenAPI) the problem answers of each
    operation, and the ``Problem`` schema they share."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path_format
        if not isinstance(route, APIRoute) or not route.include_in_schema or path is None:
            continue
        dependant: Dependant = context.dependant
        for method in context.methods or ():
            operation = document["paths"][path][method.lower()]
            responses = operation["responses"]
            # FastAPI's own 422, in its shape and wherever there is a
            # parameter, goes: derived() says where a 422 can happen.
            if responses.get("422", {}).get("description") == "Validation Error":
                del responses["422"]
            for status, titles in derived(dependant, method, path).items():
                declared = responses.get(str(status), {}).get("description", "")
                known = {t for t in declared.split("; ") if t} | titles
                responses[str(status)] = problem_answer("; ".join(sorted(known)))
    # FastAPI's 422 shape, now referred to by nothing.
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def install(app: FastAPI) -> None:
    """``app.openapi()`` documents the problem answers (built once, as
    FastAPI's own)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            document_problems(app, document)
            # What FastAPI cannot see: the lean reads and the OAuth routes.
            add_lean(app.routes, document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
