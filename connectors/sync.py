"""``vrm-connector sync``: the feed into the sink, on dlt.

One dlt pipeline per connector (its working folder under the state
folder). Each run reads up to ``pages_per_load`` pages of the feed from
the cursor the last loaded run left, turns each page into sink ops
(connectors/ops.py) and loads them into the sink (connectors/destination.py);
dlt saves the new cursor with the load, after the sink has applied every op.
Meanwhile a thread reads the next pages (connectors/source.py ``ReadAhead``),
held in memory until a run takes them from the cursor dlt saved.
A run killed at any point leaves the cursor where the last complete load
put it: the next run first finishes any package dlt had extracted but not
loaded, then reads on. Items applied twice leave the sink as once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import dlt

from connectors.config import Config
from connectors.destination import to_sink
from connectors.mapping import FieldMap
from connectors.ops import tables_of
from connectors.sinks import Sink
from connectors.source import CURSOR, PAGE, ReadAhead
from connectors.state import State
from connectors.store import Store
from connectors.tokens import TokenStore

PIPELINE = "vrm_connector"


@dataclass
class Progress:
    """What a sync did so far."""

    items: int = 0
    ops: int = 0
    runs: int = 0
    more: bool = True
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.items / elapsed if elapsed > 0 else 0.0


def _source(
    store: Store,
    ahead: ReadAhead,
    mapping: FieldMap,
    pages_per_load: int,
    progress: Progress,
    on_page: Callable[[], None],
    held: TokenStore | None = None,
) -> Any:
    @dlt.source(name="vrm", max_table_nesting=0)
    def vrm_sink_ops() -> Any:
        @dlt.resource(name="sink_ops", write_disposition="append")
        def sink_ops() -> Iterator[Any]:
            state = dlt.current.resource_state()
            read = 0
            for items, cursor, more in ahead.pages(state.get(CURSOR)):
                for table, ops in tables_of(items, mapping).items():
                    progress.ops += ops.num_rows
                    yield dlt.mark.with_table_name(ops, table)
                state[CURSOR] = cursor
                progress.items += len(items)
                progress.more = more
                on_page()
                read += 1
                if read >= pages_per_load:
                    return

        if held is None:
            return sink_ops

        @dlt.resource(name="held_ops", write_disposition="append")
        def held_ops() -> Iterator[Any]:
            for table, ops in tables_of(customer_reads(store, held), mapping).items():
                progress.ops += ops.num_rows
                yield dlt.mark.with_table_name(ops, table)

        return sink_ops, held_ops

    return vrm_sink_ops()


def customer_reads(store: Store, held: TokenStore) -> Iterator[dict[str, Any]]:
    """What each customer whose tokens the connector holds grants now
    (``GET /v1/data`` with their token, refreshed as needed), as a feed
    snapshot. A grant that ended drops its tokens: the feed's tombstone
    takes its data out of the sink."""
    tokens = held.read()
    changed = False
    for subject, token in sorted(tokens.items()):
        before = token.access_token
        body = store.customer_data(token)
        if body is None:
            del tokens[subject]
            changed = True
            continue
        changed = changed or token.access_token != before  # refreshed
        data = {k: v for k, v in body.items() if k not in ("subject", "grant_id", "purpose")}
        yield {"type": "snapshot", "subject": subject, "grant_id": token.grant_id, "data": data}
    if changed:
        held.write(tokens)


def pipeline_of(config: Config, sink: Sink) -> Any:
    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE,
        pipelines_dir=str(config.state_dir / "dlt"),
        destination=to_sink(sink),
    )
    finish_normalize(pipeline)
    return pipeline


def finish_normalize(pipeline: Any) -> None:
    """Finish what dlt's normalize step was doing if a run was killed in
    its window: a package committed for loading whose extracted copy was not
    deleted yet (dlt-hub/dlt#4446). Left there, every later normalize commits
    the copy again onto the package that exists, and fails with "Directory
    not empty". The committed package holds the same data, so the copy is
    deleted, as normalize does next (the one step here that uses dlt's
    storage below its pipeline API: there is no public call for it)."""
    committed = set(pipeline.list_normalized_load_packages())
    committed.update(pipeline.list_completed_load_packages())
    for load_id in pipeline.list_extracted_load_packages():
        if load_id in committed:
            pipeline._get_normalize_storage().extracted_packages.delete_package(load_id)


def run(
    config: Config,
    store: Store,
    sink: Sink,
    mapping: FieldMap,
    state: State,
    *,
    limit: int = PAGE,
    on_page: Callable[[Progress], None] = lambda _p: None,
    held: TokenStore | None = None,
) -> Progress:
    """Sync until the feed has nothing more now. Each dlt run's load is
    committed before the next run takes pages (read ahead meanwhile)."""
    progress = Progress()
    pipeline = pipeline_of(config, sink)
    ahead = ReadAhead(store, limit)
    try:
        while progress.more:
            before = progress.items
            source = _source(
                store, ahead, mapping, config.pages_per_load, progress, lambda: on_page(progress)
            )
            pipeline.run(source)
            progress.runs += 1
            state.count("items_applied", progress.items - before)
            cursor = pipeline.state.get("sources", {}).get("vrm", {})
            saved = cursor.get("resources", {}).get("sink_ops", {}).get(CURSOR)
            if saved is not None:
                state.put("cursor", saved)
            state.put("synced_at", str(time.time()))
        ahead.close()  # it read the last page: the store is free for what follows
        if held is not None and held.read():
            # Then each customer whose tokens the connector holds, as they
            # grant now: a load of its own, after the feed's.
            source = _source(store, ahead, mapping, 0, progress, lambda: None, held)
            pipeline.run(source.with_resources("held_ops"))
    except Exception:
        state.count("errors")
        raise
    finally:
        ahead.close()
    return progress
