"""``vrm-connector init`` writes a configuration without the secret, then
checks it against the real store, one line per problem."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from connectors import cli
from connectors import config as configuration


def _init(tmp_path: Path, server: Any, secret: str | None, *extra: str) -> Any:
    env = {"VRM_CONNECTOR_SECRET": secret}
    args = [
        "init",
        "--store-url",
        server.url,
        "--client-id",
        server.vendor.client_id,
        "--sink-url",
        f"sqlite:///{tmp_path / 'crm.db'}",
        "--config",
        str(tmp_path / "c.toml"),
        *extra,
    ]
    return CliRunner().invoke(cli.app, args, env=env)


def test_init_writes_a_private_file_without_the_secret_and_checks_it(
    tmp_path: Path, shared_live_server: Any
) -> None:
    secret = shared_live_server.vendor.client_secret
    ran = _init(tmp_path, shared_live_server, secret)
    assert ran.exit_code == 0, ran.stderr
    assert "checked" in ran.stdout
    path = tmp_path / "c.toml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret not in path.read_text()
    config = configuration.load(path)
    assert config.secret_env == "VRM_CONNECTOR_SECRET"
    assert config.store_url == shared_live_server.url


def test_init_says_what_is_wrong_one_line_each(tmp_path: Path, shared_live_server: Any) -> None:
    ran = _init(tmp_path, shared_live_server, "not-the-secret")
    assert ran.exit_code == 1
    assert ran.stderr.strip() == (
        "vrm-connector: store_url: the store refused the client: invalid_client"
    )
    again = _init(tmp_path, shared_live_server, "x")
    assert again.exit_code == 1
    assert "exists; --force replaces it" in again.stderr
    unset = _init(tmp_path, shared_live_server, None, "--force")
    assert unset.exit_code == 1
    assert "VRM_CONNECTOR_SECRET is not set" in unset.stderr


def test_a_bad_configuration_file_is_refused_naming_each_field(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('store_url = "http://store.example"\nextra = 1\n[sink]\nkind = "ftp"\n')
    ran = CliRunner().invoke(cli.app, ["check", "--config", str(path)])
    assert ran.exit_code == 1
    lines = ran.stderr.strip().splitlines()
    assert all(line.startswith("vrm-connector: ") for line in lines)
    text = "\n".join(lines)
    assert "store_url: store_url must be https" in text
    assert "client_id: Field required" in text
    assert "sink.kind:" in text
    assert "extra: Extra inputs are not permitted" in text
