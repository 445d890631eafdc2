"""``vrm-connector listen``: the RFC 8935 receiver of the store's
revocation notices.

For each ``POST``: check the notice (connectors/notices.py), purge what
it names from the sink, record the purge (connectors/state.py), and only
then answer 202. A notice that a grant was shortened purges nothing yet:
it is recorded, and the grant's expiry sends its own notice when due. A
notice refused gets 400 with its RFC 8935 error code and purges nothing.
A notice applied before (the same ``jti``: a replay, or the store trying
again after a lost 202) purges nothing again and is answered 202.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors import notices
from connectors.mapping import FieldMap
from connectors.notices import Notice, Refused
from connectors.sinks import Sink
from connectors.state import State
from connectors.store import Store

logger = logging.getLogger("vrm-connector")
MAX_BODY = 64 * 1024


def purge(sink: Sink, mapping: FieldMap, notice: Notice) -> None:
    """Delete what the notice names: its fields (the contact goes when
    nothing is left) and, for ``history``, the subject's events."""
    if "history" in notice.fields:
        sink.delete_events(notice.subject)
    sink.delete_fields(notice.subject, mapping.to_delete(notice.fields))


def app(store: Store, sink: Sink, mapping: FieldMap, state: State, max_age: int) -> Starlette:
    async def receive(request: Request) -> Response:
        received_at = time.time()
        media_type = request.headers.get("content-type", "").split(";")[0].strip()
        if media_type != notices.MEDIA_TYPE:
            return _refused(state, Refused("invalid_request", f"send {notices.MEDIA_TYPE}"))
        body = await request.body()
        if len(body) > MAX_BODY:
            return _refused(state, Refused("invalid_request", "the body is too long"))
        # The sink and the state file block: off the event loop.
        return await run_in_threadpool(apply, body, received_at)

    def apply(body: bytes, received_at: float) -> Response:
        try:
            notice = notices.verify(
                body,
                keys=store.keys,
                issuer=store.issuer,
                client_id=store.client_id,
                now=received_at,
                max_age=max_age,
            )
        except Refused as exc:
            return _refused(state, exc)
        state.count("notices_received")
        if state.applied(notice.jti):
            state.count("notices_replayed")
            return Response(status_code=202)
        if not notice.now:
            # A grant shortened: what it gives goes when it expires, and
            # the expiry's own notice says so then.
            state.record_purge(notice, received_at, purged=False)
            return Response(status_code=202)
        purge(sink, mapping, notice)
        state.record_purge(notice, received_at)
        logger.info("purged %s of a subject (%s)", ", ".join(notice.fields), notice.reason)
        return Response(status_code=202)

    # Any path: the notify_uri registered is the vendor's to choose.
    return Starlette(routes=[Route("/{path:path}", receive, methods=["POST"])])


def _refused(state: State, exc: Refused) -> Response:
    state.count("notices_refused")
    body: dict[str, Any] = {"err": exc.err, "description": exc.description}
    return JSONResponse(body, status_code=400)
