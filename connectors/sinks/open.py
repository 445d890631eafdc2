"""The sink a configuration names."""

from __future__ import annotations

import os

from connectors.config import Config, SinkConfig
from connectors.mapping import DEFAULT, FieldMap
from connectors.sinks import Sink
from connectors.sinks.bottlecrm import BOTTLECRM, BottleCRMError, BottleCRMSink
from connectors.sinks.crm_auth import ClientCredentials, CrmAuthError
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


def _credentials(sink: SinkConfig, token_url: str) -> ClientCredentials:
    """Salesforce's or Dataverse's tokens taken with client credentials;
    the first is taken now, so a wrong secret is said at once."""
    if sink.token_env:
        raise SinkError("sink: give token_env or token_url, not both")
    if not sink.client_id or not sink.client_secret_env:
        raise SinkError("sink: token_url needs client_id and client_secret_env")
    secret = os.environ.get(sink.client_secret_env)
    if not secret:
        raise SinkError(f"sink.client_secret_env: the variable {sink.client_secret_env} is not set")
    try:
        auth = ClientCredentials(token_url, sink.client_id, secret, scope=sink.token_scope)
    except CrmAuthError as exc:
        raise SinkError(f"sink.{exc}") from None
    try:
        auth.check()
    except CrmAuthError as exc:
        auth.close()
        raise SinkError(f"sink: {exc}") from None
    return auth


def _crm(config: Config) -> Sink:
    """A hosted CRM's sink (tested against fakes of their documented APIs:
    docs/connectors.md)."""
    sink = config.sink
    if sink.kind == "hubspot":
        if sink.token_url:
            raise SinkError("sink.token_url: the hubspot sink takes a private app's token_env")
        return HubSpotSink(
            _token(sink.token_env, sink.kind),
            base_url=sink.url or "https://api.hubapi.com",
            subject_property=sink.subject_field or "vrm_subject",
            removal=sink.removal,
        )
    if not sink.url:
        raise SinkError(f"sink.url: the {sink.kind} sink needs its URL")
    token: str | ClientCredentials = (
        _credentials(sink, sink.token_url) if sink.token_url else _token(sink.token_env, sink.kind)
    )
    try:
        if sink.kind == "salesforce":
            field = sink.subject_field or "Vrm_Subject__c"
            return SalesforceSink(sink.url, token, subject_field=field)
        return DynamicsSink(sink.url, token, subject_column=sink.subject_field or "vrm_subject")
    except (SalesforceError, DynamicsError):
        if isinstance(token, ClientCredentials):
            token.close()
        raise


def open_sink(config: Config) -> Sink:
    mapping = mapping_of(config)
    sink = config.sink
    if sink.removal != "permanent" and sink.kind != "hubspot":
        raise SinkError(f"sink.removal: only the hubspot sink archives; {sink.kind} deletes")
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
