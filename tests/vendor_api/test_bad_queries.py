"""One status for a bad query: whichever path answers, the lean vendor read
(vrm/vendor_api/reads.py) or a FastAPI route (the feed, the customer's
history listing, or the router in front of the same read), the same bad
query gets the same 422 ``validation`` problem (vrm.problems.invalid)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from starlette.types import Receive, Scope, Send

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.kit import assert_problem, bearer
from tests.vendor_api.helpers import feed_token

HISTORY = "/v1/data/history"


def _assert_invalid(r: Response, path: str, message: str, code: str) -> None:
    assert_problem(
        r,
        422,
        "validation",
        detail=f"query.limit: {message}",
        instance=path,
        errors=[{"field": "query.limit", "message": message, "code": code}],
    )


BAD_LIMITS = [
    ("ten", "Input should be a valid integer, unable to parse string as an integer", "int_parsing"),
    ("", "Input should be a valid integer, unable to parse string as an integer", "int_parsing"),
    ("0", "Input should be greater than or equal to 1", "greater_than_equal"),
    ("1.5", "Input should be a valid integer, unable to parse string as an integer", "int_parsing"),
]


@pytest.mark.parametrize(("limit", "message", "code"), BAD_LIMITS)
def test_the_same_bad_query_gets_the_same_answer_on_every_path(
    app: FastAPI, ana: Person, vendor: Vendor, limit: str, message: str, code: str
) -> None:
    reader = bearer(tokens_for(ana, vendor, "history:read")["access_token"])
    answers = {
        HISTORY: vendor.client.get(HISTORY, params={"limit": limit}, headers=reader),
        "/v1/feed": vendor.client.get(
            "/v1/feed", params={"limit": limit}, headers=bearer(feed_token(vendor))
        ),
        "/api/v1/me/history": ana.client.get("/api/v1/me/history", params={"limit": limit}),
    }
    for path, r in answers.items():
        _assert_invalid(r, path, message, code)


@pytest.mark.parametrize(("limit", "message", "code"), BAD_LIMITS)
def test_the_lean_read_and_its_route_answer_a_bad_query_alike(
    app: FastAPI, ana: Person, vendor: Vendor, limit: str, message: str, code: str
) -> None:
    """vrm.app.App sends a GET of /v1/data ahead of the routing; FastAPI's
    own dispatch reaches the same read through the router."""

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        await FastAPI.__call__(app, scope, receive, send)

    reader = bearer(tokens_for(ana, vendor, "history:read")["access_token"])
    lean = vendor.client.get(HISTORY, params={"limit": limit}, headers=reader)
    # No `with`: the app's lifespan is the fixture's, not this client's.
    through_router = TestClient(routed).get(HISTORY, params={"limit": limit}, headers=reader)
    for r in (lean, through_router):
        _assert_invalid(r, HISTORY, message, code)
