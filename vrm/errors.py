"""The error tree and its RFC 9457 problem-details rendering.

Services raise subclasses of :class:`VRMError`; one handler turns each into an
``application/problem+json`` response. The tree::

    VRMError
      BadRequest            400  malformed input the schema could not catch
      MalformedJSON         400  a body that is not JSON this server reads
      Unauthenticated       401  no valid session, or wrong credentials
      Forbidden             403
      NotFound              404  also used for another customer's resources
      MethodNotAllowed      405  carries the Allow header
      Conflict              409  e.g. an email already registered
      PreconditionFailed    412  a stale If-Match
      PayloadTooLarge       413
      UnsupportedMediaType  415
      ValidationFailed      422  the body or the query failed its schema
      TooManyRequests       429  carries retry_after seconds
      IntegrityFailure      500  a ciphertext failed to open: never wrong data
      KeyUnavailable        500  a key is missing from the key store

A bare ``VRMError`` is the 500 for an error no handler expected. Every
problem+json answer, the middleware's and the lean apps' included, is
rendered by :func:`problem_for`, so all carry the same members (``type``,
``title``, ``status``, ``detail``, ``instance``) and headers.

Messages never carry secrets or personal values: they name fields, not
contents.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from vrm.strictjson import NonFinite, Rejected

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:vrm:problem:"
MALFORMED_JSON = "Malformed JSON"  # the title of a 400 for a body that is not JSON
PROBLEM_REF = "#/components/schemas/Problem"

F = TypeVar("F", bound=Callable[..., Any])


class VRMError(Exception):
    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"
    # The detail when the raiser gives none (else the title): every
    # problem has one.
    default_detail: str | None = None

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(VRMError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthenticated(VRMError):
    status, slug, title = 401, "unauthenticated", "Authentication required"


class Forbidden(VRMError):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(VRMError):
    status, slug, title = 404, "not-found", "Not found"
    default_detail = "No such resource."


class MethodNotAllowed(VRMError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"

    def __init__(self, detail: str | None = None, *, allow: str) -> None:
        super().__init__(detail)
        self.allow = allow

    def headers(self) -> dict[str, str]:
        return {"Allow": self.allow}


class Conflict(VRMError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(VRMError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class MalformedJSON(VRMError):
    status, slug, title = 400, "malformed-json", MALFORMED_JSON


class PayloadTooLarge(VRMError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(VRMError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(VRMError):
    # For a query as for a body (RFC 9110 15.5.21: understood, well-formed,
    # and not acceptable); a 400 is for what cannot be parsed at all, like a
    # body that is not JSON or a cursor this server never gave out.
    status, slug, title = 422, "validation", "Request is invalid"


class TooManyRequests(VRMError):
    status, slug, title = 429, "too-many-requests", "Too many failed attempts"

    def __init__(self, detail: str | None = None, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class IntegrityFailure(VRMError):
    status, slug, title = 500, "integrity", "Stored data failed its integrity check"


class KeyUnavailable(VRMError):
    status, slug, title = 500, "key-unavailable", "A key needed for this data is not available"


class Unexpected(VRMError):
    """An error no handler expected (:func:`unhandled`)."""

    default_detail = "The server met an error it did not expect; it has been logged."


def problems(*errors: type[VRMError]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI answers for ``errors``, as a route's ``responses=``: the
    problems its handler raises. Those of its dependencies (:func:`raises`)
    and of its body and parameters are added to every operation by
    vrm/openapi.py."""
    by_status: dict[int, list[str]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error.title)
    return {status: problem_answer("; ".join(titles)) for status, titles in by_status.items()}


def problem_answer(description: str) -> dict[str, Any]:
    """One OpenAPI answer: problem details, described by ``description``."""
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def raises(*errors: type[VRMError]) -> Callable[[F], F]:
    """Mark a dependency as raising ``errors``: every operation that depends
    on it, however deep, documents them (vrm/openapi.py)."""

    def mark(dependency: F) -> F:
        dependency.__problems__ = errors  # type: ignore[attr-defined]
        return dependency

    return mark


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
