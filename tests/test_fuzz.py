"""Schemathesis against the served app's own OpenAPI document.

Every documented operation is called with generated input, as the customer
(session cookie), as a vendor (a user token for /v1/history, a feed token for
/v1/feed) and anonymously, with data that fits the schema and data that does
not; then the stateful pass chains operations through the document's links
(an event created, then read, patched, deleted). A run fails on any 5xx, any
answer whose status, media type or body the document does not declare, any
error answer that is not ``application/problem+json``, and any invalid input
that is accepted.

Bounded: a fixed number of examples per operation, derandomised so a CI run
is reproducible (a failure here is a real regression, never a new random
find), on SQLite only: the HTTP contract is the same code on both databases,
and the rest of the suite runs everything on PostgreSQL too. Each test
logs how many requests it sent (``pytest -o log_cli=true`` shows it) and
asserts a floor,
so a schema that lost its operations cannot pass by sending nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import sign_up_and_log_in
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import feed_token

logger = logging.getLogger(__name__)

PROBLEM = "application/problem+json"

# Operations that end the fuzzing customer's session or account, after which
# every later request would be a 401 and test nothing.
SESSION_ENDING = {
    ("DELETE", "/api/v1/me"),
    ("DELETE", "/api/v1/session"),
    ("PUT", "/api/v1/me/password"),
}
# Ends the fuzzing customer's session only given its real id, which the
# stateful pass finds through GET /api/v1/me/sessions (schemathesis links
# the two itself); the random ids of the other passes never match it.
ENDS_A_LISTED_SESSION = ("DELETE", "/api/v1/me/sessions/{session_id}")

# The OAuth endpoints answer in RFC 6749 / RFC 7591's format, not problem
# details, and their forms are covered parameter by parameter by the
# conformance tests (tests/consent/test_conformance_*.py); they are in the
# document for vendors to read, not fuzzed here.
NOT_FUZZED = r"^/(oauth|\.well-known)/"

Headers = dict[str, str]


@schemathesis.check
def problem_details(ctx: Any, response: Any, case: Any) -> bool | None:
    """RFC 9457: every error answer of the API is a problem document."""
    if response.status_code >= 400:
        media = response.headers.get("content-type", [""])[0].split(";")[0]
        assert media == PROBLEM, f"a {response.status_code} answered as {media!r}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    problem_details,
]


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def fuzz_schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app).exclude(path_regex=NOT_FUZZED)


@pytest.fixture
def identities(app: FastAPI) -> dict[str, Headers]:
    ana = sign_up_and_log_in(app, "ana@example.org")
    vendor = register_vendor(app)
    user = tokens_for(ana, vendor, "profile:read history:read history:write")
    return {
        "customer": {"Cookie": "; ".join(f"{k}={v}" for k, v in ana.client.cookies.items())},
        "vendor": bearer(user["access_token"]),
        "feed": bearer(feed_token(vendor)),
    }


def identity_for(path: str) -> str:
    if path.startswith("/v1/feed"):
        return "feed"
    if path.startswith("/v1/"):
        return "vendor"
    return "customer"


def _runner(operation: Any, mode: GenerationMode, examples: int, headers: Headers) -> Any:
    """A hypothesis test of one operation in one mode; it counts its calls."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        run.sent += 1  # type: ignore[attr-defined]
        case.call_and_validate(headers=headers, checks=CHECKS)

    run.sent = 0  # type: ignore[attr-defined]
    return run


def fuzz(schema: Any, examples: int, headers_for: Callable[[Any], Headers | None]) -> int:
    """Run every operation ``headers_for`` gives headers for, in both
    generation modes; fail with every operation's failures at once."""
    sent = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        headers = headers_for(operation)
        if headers is None:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _runner(operation, mode, examples, headers)
            try:
                run()
            except Unsatisfiable:
                # No invalid request exists for an operation without
                # parameters or body (GET /api/v1/me): nothing to send.
                pass
            except (Exception, BaseExceptionGroup) as exc:  # gathered, reported below
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
            sent += run.sent
    assert not failures, "\n\n".join(failures)
    return sent


def test_fuzz_as_the_customer_and_vendors(
    fuzz_schema: Any,
    identities: dict[str, Headers],
) -> None:
    def headers_for(operation: Any) -> Headers | None:
        if (operation.method.upper(), operation.path) in SESSION_ENDING:
            return None
        return identities[identity_for(operation.path)]

    sent = fuzz(fuzz_schema, 30, headers_for)
    logger.info("fuzzing sent %d requests", sent)
    assert sent >= 450


def test_fuzz_anonymously(fuzz_schema: Any) -> None:
    sent = fuzz(fuzz_schema, 8, lambda operation: {})
    logger.info("fuzzing sent %d requests", sent)
    assert sent >= 150


def test_fuzz_statefully_through_links(
    fuzz_schema: Any,
    identities: dict[str, Headers],
) -> None:
    schema = fuzz_schema
    for method, path in (*SESSION_ENDING, ENDS_A_LISTED_SESSION):
        schema = schema.exclude(method=method, path=path)
    steps: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            steps.append(f"{case.method} {case.path}")
            return {"headers": identities[identity_for(case.path)]}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS)

    Machine.run(
        settings=settings(
            max_examples=30,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    logger.info("fuzzing sent %d requests", len(steps))
    # The links were followed: an event was created and then used.
    assert "POST /api/v1/me/history" in steps
    assert "PATCH /api/v1/me/history/{event_id}" in steps
