"""The sink a configuration names."""

from __future__ import annotations

from connectors.config import Config
from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks.sql import SinkError, SQLSink


def mapping_of(config: Config) -> FieldMap:
    return FieldMap(config.mapping or DEFAULT)


def open_sink(config: Config) -> SQLSink:
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
    raise SinkError(f"sink.kind: the {sink.kind} sink is not built yet")
