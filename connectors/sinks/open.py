"""The sink a configuration names."""

from __future__ import annotations

from connectors.config import Config
from connectors.mapping import DEFAULTS, FieldMap
from connectors.sinks import Sink
from connectors.sinks.bottlecrm import BottleCRMError, BottleCRMSink
from connectors.sinks.files import FileSink
from connectors.sinks.sql import SinkError, SQLSink


def mapping_of(config: Config) -> FieldMap:
    return FieldMap(config.mapping or DEFAULTS[config.sink.kind])


def open_sink(config: Config) -> Sink:
    mapping = mapping_of(config)
    sink = config.sink
    if sink.kind == "sql":
        if not sink.url:
            raise SinkError("sink.url: the sql sink needs a SQLAlchemy URL")
        try:
            return SQLSink(
                sink.url,
                mapping,
                contacts_table=sink.contacts_table,
                events_table=sink.events_table,
            )
        except SinkError:
            raise
        except Exception as exc:
            raise SinkError(f"sink.url: cannot open the database ({type(exc).__name__})") from None
    if sink.kind == "bottlecrm":
        if not sink.url or not sink.token_env:
            raise SinkError("sink: the bottlecrm sink needs url and token_env")
        try:
            crm = BottleCRMSink.from_env(sink.url, sink.token_env, sink.subject_field)
        except BottleCRMError as exc:
            raise SinkError(str(exc)) from None
        try:
            crm.ids()  # it answers, and the token may read contacts
        except BottleCRMError as exc:
            crm.close()
            raise SinkError(str(exc)) from None
        return crm
    if sink.kind in ("csv", "jsonl"):
        if sink.path is None:
            raise SinkError(f"sink.path: the {sink.kind} sink needs a folder")
        try:
            return FileSink(sink.path, mapping, sink.kind)
        except (OSError, ValueError) as exc:
            raise SinkError(f"sink.path: cannot use {sink.path} ({type(exc).__name__})") from None
    raise SinkError(f"sink.kind: no sink is called {sink.kind}")
