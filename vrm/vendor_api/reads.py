"""``GET /v1/data`` and ``GET /v1/data/{category}``: a vendor reading one
customer's data with a Bearer token, the API's busiest call.

Like the token endpoints (consent/oauth/endpoints.py) this is one small ASGI
app rather than FastAPI routes: no dependency solving, no route search, no
ORM session for the usual read. A read is three statements: the token with
its vendor and grant (one join), the customer's documents, and the access
event, which is committed before a byte of the answer is sent. On SQLite a
read runs in the event loop in a read transaction of its own, and the access
events of the reads answered within two turns of the loop are committed together
(vrm/storage/groupcommit.py); on PostgreSQL a read runs in the threadpool, in one
REPEATABLE READ snapshot with its own access event. Either way a read sees
one snapshot, so it never mixes a grant that was active with data written
after it was revoked.

``vrm.app.App`` sends a GET to these paths to :data:`vendor_read` ahead of
FastAPI's middleware and routing; the same app is mounted as the routes of
``vrm.vendor_api.routes.router``, which answer the other methods. Errors are
problem details, with ``WWW-Authenticate`` on 401 and 403 (RFC 6750 3.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from consent.oauth import tokens
from vrm.catalogue import CATEGORIES
from vrm.errors import NotFound, VRMError, invalid, problem_for
from vrm.etags import matches_if_none_match
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.storage import groupcommit
from vrm.vendor_api import accesses, edge, events, projection
from vrm.vendor_api.edge import Reader

PREFIX = "/v1/data"
_SINCE_MAX = 200


def category_of(path: str) -> str | None | bool:
    """The category a path names: None for ``/v1/data`` itself, False for a
    path this app does not serve."""
    if path == PREFIX:
        return None
    rest = path[len(PREFIX) + 1 :] if path.startswith(PREFIX + "/") else ""
    if not rest or "/" in rest:
        return False
    return rest


def _reader(conn: Connection, vault: Vault, token: str | None) -> Reader:
    return edge.reader_of(vault, edge.active_token(conn, vault, token))


class HistoryQuery(BaseModel):
    """The query of ``/v1/data/history?since=&limit=``, validated as FastAPI
    validates a route's query model, and refused the same way
    (``vrm.errors.invalid``: 422 ``validation``). Other parameters are
    ignored, as on every route."""

    since: Annotated[str | None, Field(max_length=_SINCE_MAX)] = None
    limit: Annotated[int, Field(ge=1, le=events.MAX_HISTORY_LIMIT)] = events.DEFAULT_HISTORY_LIMIT


def history_query(query: Mapping[str, str]) -> HistoryQuery:
    try:
        return HistoryQuery.model_validate(query)
    except ValidationError as exc:
        raise invalid(exc.errors(), prefix=("query",)) from None


def view(
    conn: Connection,
    vault: Vault,
    *,
    token: str | None,
    category: str | None,
    query: Mapping[str, str],
    if_none_match: str | None,
) -> tuple[Response, dict[str, Any]]:
    """The answer to one read and the access event to record before it is
    sent; raises VRMError for the problem-details answers."""
    reader = _reader(conn, vault, token)
    if category is None:
        categories = projection.readable_categories(reader.accesses)
    else:
        projection.require_category(reader, category)
        categories = [category]
    if category == "history" and ("since" in query or "limit" in query):
        return _history_changes(conn, vault, reader, query)
    wanted = [c for c in categories if CATEGORIES[c].kind == "document"]
    # An ORM session only for the history, which is read through it.
    session = Session(bind=conn) if len(wanted) < len(categories) else None
    shown = projection.project(
        session=session,
        vault=vault,
        reader=reader,
        categories=categories,
        documents=records.read_fields_of(
            conn=conn, vault=vault, customer_id=reader.customer_id, categories=wanted
        ),
    )
    etag = shown.etag
    # The vendor may keep what it read (within the grant's retention), but no
    # shared cache may; every reuse revalidates, so every use is counted.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    not_modified = matches_if_none_match(if_none_match, etag)
    access = accesses.access_row(reader, shown.categories, shown.fields, not_modified=not_modified)
    if not_modified:
        return Response(status_code=304, headers=headers), access
    return Response(shown.json, media_type="application/json", headers=headers), access


def _history_changes(
    conn: Connection, vault: Vault, reader: Reader, query: Mapping[str, str]
) -> tuple[Response, dict[str, Any]]:
    """``/v1/data/history?since=&limit=``: the history in the order it
    changed (see events.history_changes)."""
    parsed = history_query(query)
    session = Session(bind=conn)
    shown = events.history_changes(
        session=session, vault=vault, reader=reader, since=parsed.since, limit=parsed.limit
    )
    access = accesses.access_row(reader, shown.categories, shown.fields)
    # No cache may keep it: Cache-Control: no-store, as every /v1/ answer
    # that says nothing else (vrm/headers.py).
    return Response(shown.json, media_type="application/json"), access


def _prepare(
    conn: Connection, vault: Vault, scope: Scope, category: str | None
) -> tuple[Response, dict[str, Any] | None]:
    headers = Headers(scope=scope)
    raw_query = scope.get("query_string", b"").decode("latin-1")
    try:
        return view(
            conn,
            vault,
            token=tokens.bearer(headers.get("authorization", "")),
            category=category,
            query=dict(parse_qsl(raw_query, keep_blank_values=True)),
            if_none_match=headers.get("if-none-match"),
        )
    except VRMError as exc:
        return problem_for(exc, scope["method"], scope["path"]), None


def answer(engine: Engine, vault: Vault, scope: Scope, category: str | None) -> Response:
    """One read on a connection of its own, its access event committed in
    the read's transaction (PostgreSQL: one REPEATABLE READ snapshot, so a
    read never mixes a grant that was active with data written after it was
    revoked). Closing the connection rolls back whatever was not committed."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        response, access = _prepare(conn, vault, scope, category)
        if access is not None:
            accesses.add_accesses(conn, [access])
            conn.commit()
    return response


async def _inline(state: Any, scope: Scope, category: str | None) -> Response:
    """On SQLite: the read in the event loop, in a read transaction of its
    own (one snapshot, and no write lock, so the workers of one database
    read side by side), then its access event in the app's group commit
    (vrm/storage/groupcommit.py); the answer waits for that commit."""
    engine: Engine = state.engine
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None  # noqa: S101 - a checked-out connection has one
        driver.execute("BEGIN")  # ended by the rollback as the connection closes
        response, access = _prepare(conn, state.vault, scope, category)
    if access is not None:
        await groupcommit.of(state).run(
            accesses.WRITES, lambda tx: accesses.add_accesses(tx.conn, [access])
        )
    return response


class VendorRead:
    """ASGI app for GET /v1/data and /v1/data/{category} (a class, so that
    Starlette's ``Route`` takes it as an ASGI app). The vault and engine are
    the app's, from ``scope["app"].state``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        category = category_of(scope["path"])
        state = scope["app"].state
        response: Response
        # Only GET comes here: vrm.app.App sends nothing else, and the routes
        # (vrm/vendor_api/routes.py) refuse every other method, HEAD too.
        if category is False:
            response = problem_for(NotFound("No such resource."), scope["method"], scope["path"])
        elif state.engine.dialect.name == "sqlite":
            # In the event loop, as the token endpoint does: the work costs
            # less than two thread hops (docs/performance.md#the-lean-vendor-paths).
            response = await _inline(state, scope, category)  # type: ignore[arg-type]
        else:
            response = await run_in_threadpool(
                answer,
                state.engine,
                state.vault,
                scope,
                category,  # type: ignore[arg-type]
            )
        await response(scope, receive, send)


vendor_read = VendorRead()
