"""The sink a configuration names."""

from __future__ import annotations

import os

from connectors.config import Config
from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks import Sink
from connectors.sinks.bottlecrm import BOTTLECRM, BottleCRMError, BottleCRMSink
from connectors.sinks.dynamics import DYNAMICS, DynamicsError, DynamicsSink
from connectors.sinks.files import FileSink
from connectors.sinks.hubspot import HUBSPOT, HubSpotError, HubSpotSink
from connectors.sinks.salesforce import SALESFORCE, SalesforceError, SalesforceSink
from connectors.sinks.sql import SinkError, SQLSink

# Each sink's default mapping (a configuration's [mapping] replaces it).
DEFAULTS = {
    "sql": DEFAULT,
    "csv": DEFAULT,
    "jsonl": DEFAULT,
    "bottlecrm": BOTTLECRM,
    "hubspot": HUBSPOT,
    "salesforce": SALESFORCE,
    "dynamics": DYNAMICS,
}
HOSTED = ("hubspot", "salesforce", "dynamics")


def mapping_of(config: Config) -> FieldMap:
    return FieldMap(config.mapping or DEFAULTS[config.sink.kind])


def _token(env: str | None, kind: str) -> str:
    if not env:
        raise SinkError(f"sink.token_env: the {kind} sink needs the variable holding its token")
    token = os.environ.get(env)
    if not token:
        raise SinkError(f"sink.token_env: the variable {env} is not set")
    return token


def _crm(config: Config) -> Sink:
    """A hosted CRM's sink (tested against fakes of their documented APIs:
    docs/connectors.md)."""
    sink = config.sink
    token = _token(sink.token_env, sink.kind)
    if sink.kind == "hubspot":
        return HubSpotSink(
            token,
            base_url=sink.url or "https://api.hubapi.com",
            subject_property=sink.subject_field or "vrm_subject",
        )
    if not sink.url:
        raise SinkError(f"sink.url: the {sink.kind} sink needs its URL")
    if sink.kind == "salesforce":
        return SalesforceSink(sink.url, token, subject_field=sink.subject_field or "Vrm_Subject__c")
    return DynamicsSink(sink.url, token, subject_column=sink.subject_field or "vrm_subject")


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
            crm = BottleCRMSink.from_env(
                sink.url, sink.token_env, sink.subject_field or "vrm_subject"
            )
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
    if sink.kind in HOSTED:
        try:
            return _crm(config)
        except (HubSpotError, SalesforceError, DynamicsError) as exc:
            raise SinkError(str(exc)) from None
    raise SinkError(f"sink.kind: no sink is called {sink.kind}")
