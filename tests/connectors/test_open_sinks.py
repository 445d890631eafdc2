"""Each sink a configuration can name opens as that sink, with its CRM's
default mapping, its token from the variable named; what is missing is
said in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.config import Config
from connectors.sinks.dynamics import DYNAMICS, DynamicsSink
from connectors.sinks.hubspot import HUBSPOT, HubSpotSink
from connectors.sinks.open import mapping_of, open_sink
from connectors.sinks.salesforce import SALESFORCE, SalesforceSink
from connectors.sinks.sql import SinkError


def _config(tmp_path: Path, **sink: Any) -> Config:
    return Config.model_validate(
        {
            "store_url": "https://store.example",
            "client_id": "vnd_x",
            "secret_env": "S",
            "sink": sink,
            "state_dir": str(tmp_path),
        }
    )


@pytest.mark.parametrize(
    ("kind", "url", "cls", "mapping"),
    [
        ("hubspot", None, HubSpotSink, HUBSPOT),
        ("salesforce", "https://acme.my.salesforce.com", SalesforceSink, SALESFORCE),
        ("dynamics", "https://acme.crm.dynamics.com", DynamicsSink, DYNAMICS),
    ],
)
def test_a_crm_sink_opens_with_its_token_and_mapping(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    url: str | None,
    cls: type,
    mapping: dict[str, str],
) -> None:
    monkeypatch.setenv("CRM_TOKEN", "t0ken")
    config = _config(tmp_path, kind=kind, url=url, token_env="CRM_TOKEN")
    sink = open_sink(config)
    try:
        assert isinstance(sink, cls)
    finally:
        sink.close()
    assert mapping_of(config).fields == mapping
    monkeypatch.delenv("CRM_TOKEN")
    with pytest.raises(SinkError, match="the variable CRM_TOKEN is not set"):
        open_sink(config)
    with pytest.raises(SinkError, match="needs the variable holding its token"):
        open_sink(_config(tmp_path, kind=kind, url=url))


def test_a_crm_that_needs_its_url_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TOKEN", "t0ken")
    with pytest.raises(SinkError, match="sink.url: the salesforce sink needs its URL"):
        open_sink(_config(tmp_path, kind="salesforce", token_env="CRM_TOKEN"))
