"""The error tree, and how OpenAPI describes its problems.

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
rendered by :func:`vrm.problems.problem_for`, so all carry the same members
(``type``, ``title``, ``status``, ``detail``, ``instance``) and headers.

Messages never carry secrets or personal values: they name fields, not
contents.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

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
