"""RFC 9457 problem details: the one renderer of every problem this server
answers with, and FastAPI's handlers that use it (the error tree they
render is vrm/errors.py).

FastAPI's handlers (:func:`install_handlers`), the middleware and the lean
ASGI endpoints, which those handlers never see, all answer through
:func:`problem_for`; a pydantic failure becomes a problem of the tree
through :func:`invalid`, one rule for routed and lean paths alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from vrm.errors import (
    PROBLEM_BASE,
    PROBLEM_JSON,
    BadRequest,
    Conflict,
    Forbidden,
    MalformedJSON,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    TooManyRequests,
    Unauthenticated,
    Unexpected,
    UnsupportedMediaType,
    ValidationFailed,
    VRMError,
)
from vrm.strictjson import NonFinite, Rejected

# Logged under the name this has always logged under, which operators'
# logging configuration (and the tests) filter on.
logger = logging.getLogger("vrm.errors")


def problem_response(
    *,
    status: int,
    title: str,
    type_uri: str = "about:blank",
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_uri, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_for(exc: VRMError, method: str, path: str) -> JSONResponse:
    """The problem-details answer to ``exc`` raised by ``method path``: the
    one renderer of every problem this server sends (FastAPI's handlers, the
    middleware, and the lean ASGI endpoints, which those handlers never see)."""
    if exc.status >= 500:
        logger.error("%s on %s %s", exc.slug, method, path)
    return _render(exc, path)


def _render(exc: VRMError, path: str) -> JSONResponse:
    return problem_response(
        status=exc.status,
        title=exc.title,
        type_uri=exc.type_uri,
        detail=exc.detail or exc.default_detail or exc.title,
        instance=path,
        headers=exc.headers(),
        **exc.extra,
    )


async def _vrm_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VRMError)  # noqa: S101 - registered for VRMError only
    return problem_for(exc, request.method, request.url.path)


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "profile", "email") -> "profile.email"; the leading "body" is noise.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts) or "body"


def invalid(errors: Sequence[Mapping[str, Any]], *, prefix: tuple[str, ...] = ()) -> VRMError:
    """The problem for pydantic's ``errors`` (``ValidationError.errors()``,
    their ``loc`` under ``prefix``): a 422 naming each field, or a 400 if the
    body is not JSON at all. One rule for FastAPI's routes and the lean
    apps, which validate a query with the same pydantic model."""
    # Only the location and the kind of error: echoing "input" would put the
    # submitted (personal) value into the response and possibly logs.
    failed = [
        {
            "field": _location((*prefix, *e.get("loc", ()))),
            "message": e.get("msg", ""),
            "code": e.get("type"),
        }
        for e in errors
    ]
    if any(e["code"] == "json_invalid" for e in failed):
        # Not JSON at all is a syntax error (400), not a schema failure (422).
        return MalformedJSON("The request body is not valid JSON.")
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in failed)[:500]
    return ValidationFailed(detail, errors=failed)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    return _render(invalid(exc.errors()), request.url.path)


def allowed_methods(app: FastAPI, path: str) -> str:
    """Every method some route of ``app`` answers at ``path``: a 405's
    ``Allow`` lists them all (RFC 9110 15.5.6), while Starlette's router
    names only those of the first route matching the path."""
    methods: set[str] = set()
    for context in iter_route_contexts(app.routes):
        regex = getattr(context, "path_regex", None)
        if context.methods and regex is not None and regex.match(path):
            methods |= context.methods
    return ", ".join(sorted(methods))


def method_not_allowed(app: FastAPI, method: str, path: str) -> JSONResponse:
    allow = allowed_methods(app, path)
    return problem_for(
        MethodNotAllowed(f"This resource answers {allow}.", allow=allow), method, path
    )


def body_refused(exc: Rejected, path: str) -> JSONResponse:
    """The answer to a JSON body vrm.strictjson refused: a number no store
    can hold is a schema failure (422, like any value out of range); the
    rest (syntax, encoding, depth, length) is not JSON this server reads
    (400). The detail names the limit, never the content."""
    if isinstance(exc, NonFinite):
        return _render(
            ValidationFailed(
                f"body: {exc.message}",
                errors=[{"field": "body", "message": exc.message, "code": "non_finite"}],
            ),
            path,
        )
    detail = (
        "The request body is not valid JSON."
        if exc.reason == "syntax"
        else f"The request body is not JSON this server reads: {exc.message}."
    )
    return _render(MalformedJSON(detail), path)


class HTTPProblem(VRMError):
    """An ``HTTPException`` of Starlette's or FastAPI's (the router's 404,
    say), rendered as the error of this tree with its status, or as
    ``about:blank`` (RFC 9457 4.2.1) where the tree has none."""

    def __init__(self, status: int, detail: str | None, headers: dict[str, str]) -> None:
        known = _BY_STATUS.get(status)
        self.status = status
        self.title = known.title if known else _reason(status)
        self.slug = known.slug if known else ""
        self.default_detail = known.default_detail if known else None
        # Starlette's default detail is the reason phrase: say no more than
        # the title does.
        super().__init__(None if detail == _reason(status) else detail)
        self._headers = headers

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug if self.slug else "about:blank"

    def headers(self) -> dict[str, str]:
        return self._headers


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    if exc.status_code == 405:
        return method_not_allowed(request.app, request.method, request.url.path)
    problem = HTTPProblem(
        exc.status_code,
        exc.detail if isinstance(exc.detail, str) else None,
        dict(exc.headers) if exc.headers else {},
    )
    return problem_for(problem, request.method, request.url.path)


def unhandled(method: str, path: str, exc: Exception) -> JSONResponse:
    """The answer to an error no handler expected: logged with its
    traceback, and a 500 problem that says nothing about it."""
    logger.error("unhandled error on %s %s", method, path, exc_info=exc)
    return _render(Unexpected(), path)


async def _unhandled(request: Request, exc: Exception) -> JSONResponse:
    return unhandled(request.method, request.url.path, exc)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_BY_STATUS: dict[int, type[VRMError]] = {
    error.status: error
    for error in (
        BadRequest,
        Unauthenticated,
        Forbidden,
        NotFound,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        TooManyRequests,
    )
}


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VRMError, _vrm_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
