"""``GET /v1/data`` and ``GET /v1/data/{category}``: a vendor reading one
customer's data with a Bearer token, the API's busiest call.

Like the token endpoints (consent/oauth/endpoints.py) this is one small ASGI
app rather than FastAPI routes: no dependency solving, no route search, no
ORM session for the usual read. A read is three statements: the token with
its vendor and grant (one join), the customer's documents, and the access
event, which is committed before a byte of the answer is sent (and, for a
history, the stamps of its events). On SQLite a read runs in the event loop
in a read transaction of its own (but for opening history events not in the
vault's memory, which runs in the threadpool), and the access events of the
reads answered within two turns of the loop are committed together
(vrm/storage/groupcommit.py); on PostgreSQL a read runs in the threadpool,
in one REPEATABLE READ snapshot, and its access event joins the group commit
too. Either way a read sees one snapshot, so it never mixes a grant that was
active with data written after it was revoked, and its access event and
audit entry (consent/audit) commit together before the answer is sent.

``vrm.app.App`` sends a GET to these paths to :data:`vendor_read` ahead of
FastAPI's middleware and routing; the same table (vrm/lean.py) makes them
routes, which answer the other methods. The token is checked at the one
bearer edge (consent/oauth/bearer.py). Errors are problem details, with
``WWW-Authenticate`` on 401 and 403 (RFC 6750 3.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from consent import policy
from consent.oauth import bearer
from vrm.catalogue import CATEGORIES
from vrm.errors import VRMError
from vrm.etags import matches_if_none_match
from vrm.history import service as history
from vrm.keys.service import Vault
from vrm.problems import invalid, problem_for
from vrm.records import service as records
from vrm.storage import groupcommit
from vrm.vendor_api import accesses, edge, events, projection
from vrm.vendor_api.edge import Reader

PREFIX = "/v1/data"
_SINCE_MAX = 200


class HistoryQuery(BaseModel):
    """The query of ``/v1/data/history?since=&limit=``, validated as FastAPI
    validates a route's query model, and refused the same way
    (``vrm.problems.invalid``: 422 ``validation``). Other parameters are
    ignored, as on every route."""

    since: Annotated[str | None, Field(max_length=_SINCE_MAX)] = None
    limit: Annotated[int, Field(ge=1, le=events.MAX_HISTORY_LIMIT)] = events.DEFAULT_HISTORY_LIMIT


def history_query(query: Mapping[str, str]) -> HistoryQuery:
    try:
        return HistoryQuery.model_validate(query)
    except ValidationError as exc:
        raise invalid(exc.errors(), prefix=("query",)) from None


@dataclass(frozen=True)
class _Read:
    """A read whose token and category have been checked, and what is left
    of it: decrypting and projecting the customer's data."""

    reader: Reader
    category: str | None
    categories: list[str]
    query: dict[str, str]
    if_none_match: str | None
    # The customer's history events (stamps), once read: see _opens_events.
    history_rows: list[history.Stamp] | None = None

    @property
    def pages(self) -> bool:
        """Whether it reads the history in the order it changed."""
        return self.category == "history" and ("since" in self.query or "limit" in self.query)


def _opens_events(conn: Connection, vault: Vault, read: _Read) -> tuple[_Read, bool]:
    """The read, with the customer's history events (stamps) if it shows
    them, and whether it may have to open (decrypt) some: the one part of a
    read whose cost grows with the customer's data, which then runs off the
    event loop. A history whose every event is in the vault's memory
    (vrm/keys/derived.py) costs about what a profile does, and stays."""
    if "history" not in read.categories:
        return read, False
    if read.pages:
        return read, True
    rows = history.stamps_of(conn, read.reader.customer_id)
    read = replace(read, history_rows=rows)
    return read, not projection.all_in_memory(vault, read.reader.vendor_id, rows)


def _begin(conn: Connection, vault: Vault, scope: Scope, category: str | None) -> _Read:
    """The read the request asks for, once its token (consent/oauth/bearer.py)
    and category have been checked; raises VRMError otherwise."""
    headers = Headers(scope=scope)
    reader = edge.reader_of(vault, bearer.active_token(conn, vault, headers))
    if category is None:
        categories = policy.readable_categories(reader.accesses)
    else:
        projection.require_category(reader, category)
        categories = [category]
    raw_query = scope.get("query_string", b"").decode("latin-1")
    return _Read(
        reader=reader,
        category=category,
        categories=categories,
        query=dict(parse_qsl(raw_query, keep_blank_values=True)),
        if_none_match=headers.get("if-none-match"),
    )


def _finish(conn: Connection, vault: Vault, read: _Read) -> tuple[Response, dict[str, Any]]:
    """The answer to one read and the access event to record before it is
    sent; raises VRMError for the problem-details answers."""
    reader, categories, query = read.reader, read.categories, read.query
    if read.pages:
        return _history_changes(conn, vault, reader, query)
    wanted = [c for c in categories if CATEGORIES[c].kind == "document"]
    # An ORM session only for the history, which is read through it.
    session = Session(bind=conn) if len(wanted) < len(categories) else None
    shown = projection.project(
        session=session,
        vault=vault,
        reader=reader,
        categories=categories,
        history_rows=read.history_rows,
        documents=records.read_fields_of(
            conn=conn,
            vault=vault,
            customer_id=reader.customer_id,
            categories=wanted,
            fields={c: policy.fields_of(reader.accesses, c) or () for c in wanted},
        ),
    )
    etag = shown.etag
    # The vendor may keep what it read (within the grant's retention), but no
    # shared cache may; every reuse revalidates, so every use is counted.
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
    not_modified = matches_if_none_match(read.if_none_match, etag)
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


def _problem(exc: VRMError, scope: Scope) -> tuple[Response, None]:
    return problem_for(exc, scope["method"], scope["path"]), None


def _snapshot_read(
    conn: Connection, vault: Vault, scope: Scope, category: str | None
) -> tuple[Response, dict[str, Any] | None]:
    # PostgreSQL: one REPEATABLE READ snapshot, so a read never mixes a grant
    # that was active with data written after it was revoked.
    if conn.dialect.name == "postgresql":
        conn.execution_options(isolation_level="REPEATABLE READ")
    try:
        return _finish(conn, vault, _begin(conn, vault, scope, category))
    except VRMError as exc:
        return _problem(exc, scope)


def _read_only(
    engine: Engine, vault: Vault, scope: Scope, category: str | None
) -> tuple[Response, dict[str, Any] | None]:
    with engine.connect() as conn:  # closing it ends the read's transaction
        return _snapshot_read(conn, vault, scope, category)


async def _in_threadpool(state: Any, scope: Scope, category: str | None) -> Response:
    """On PostgreSQL: the read in the threadpool, in a snapshot of its own,
    then its access event and audit entry in the app's group commit (one
    commit for the reads answered together, and one turn each at the audit
    log's head, where a REPEATABLE READ transaction writing it would fail
    whenever another read wrote first). The answer waits for that commit."""
    response, access = await run_in_threadpool(
        _read_only, state.engine, state.vault, scope, category
    )
    if access is not None:
        await _record(state, access)
    return response


async def _record(state: Any, access: dict[str, Any]) -> None:
    await groupcommit.of(state).run(
        accesses.WRITES, lambda tx: accesses.add_accesses(tx.conn, [access], via="data")
    )


async def _inline(state: Any, scope: Scope, category: str | None) -> Response:
    """On SQLite: the read in a read transaction of its own (one snapshot,
    and no write lock, so the workers of one database read side by side),
    then its access event in the app's group commit (vrm/storage/groupcommit.py);
    the answer waits for that commit. The token check and the documents run
    in the event loop, cheaper than two thread hops
    (docs/performance.md#the-lean-vendor-paths); a history with events to
    open (decrypt) is projected in the threadpool, since its cost grows with
    the customer's data and would hold every other connection meanwhile,
    and so is one read in the order it changed (see _opens_events). The connection
    moves to the thread and back, never used by two at once (the loop
    awaits the thread, which is not abandoned on cancellation)."""
    engine: Engine = state.engine
    vault: Vault = state.vault
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None  # noqa: S101 - a checked-out connection has one
        driver.execute("BEGIN")  # ended by the rollback as the connection closes
        response: Response
        access: dict[str, Any] | None
        try:
            read, heavy = _opens_events(conn, vault, _begin(conn, vault, scope, category))
            if heavy:
                response, access = await run_in_threadpool(_finish, conn, vault, read)
            else:
                response, access = _finish(conn, vault, read)
        except VRMError as exc:
            response, access = _problem(exc, scope)
    if access is not None:
        await _record(state, access)
    return response


class VendorRead:
    """ASGI app for GET /v1/data and /v1/data/{category} (a class, so that
    Starlette's ``Route`` takes it as an ASGI app). The vault and engine are
    the app's, from ``scope["app"].state``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Set by the route, or by vrm.app.App's lean dispatch from the same
        # route (vrm/lean.py): absent on /v1/data itself.
        category = scope.get("path_params", {}).get("category")
        state = scope["app"].state
        response: Response
        # Only GET comes here: the table of vrm/lean.py routes nothing else,
        # and HEAD neither.
        if state.engine.dialect.name == "sqlite":
            # In the event loop, as the token endpoint does, but for a
            # history (_inline).
            response = await _inline(state, scope, category)
        else:
            response = await _in_threadpool(state, scope, category)
        await response(scope, receive, send)


vendor_read = VendorRead()
