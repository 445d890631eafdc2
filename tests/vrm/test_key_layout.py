"""`vrm serve` warns when the key store lies beside the database outside
development: a copy of that folder would defeat crypto-shredding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vrm import cli
from vrm.keys.layout import warn_if_keys_beside_database
from vrm.settings import Settings

PUBLIC = "https://vrm.example.org"


def _message(data_dir: Path) -> str:
    return (
        f"key store {(data_dir / 'keys').resolve()} is inside the database's folder "
        f"{data_dir.resolve()}: a copy of that folder holds erased customers' keys beside "
        "their data; set VRM_KEY_DIR to another disk (docs/keys.md)"
    )


def _warnings(caplog: pytest.LogCaptureFixture, settings: Settings) -> list[tuple[str, str]]:
    with caplog.at_level("WARNING", logger="vrm.keys.layout"):
        warn_if_keys_beside_database(settings)
    return [(r.levelname, r.getMessage()) for r in caplog.records]


def test_default_key_dir_beside_the_database_is_warned_of_in_production(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, issuer=PUBLIC)
    assert _warnings(caplog, settings) == [("WARNING", _message(tmp_path))]


def test_default_key_dir_is_fine_in_development(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path, issuer="http://localhost:8000")
    assert _warnings(caplog, settings) == []


def test_key_dir_outside_the_databases_folder_is_fine_in_production(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", issuer=PUBLIC)
    assert _warnings(caplog, settings) == []


def test_database_file_elsewhere_than_the_data_dir_is_what_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Keys under the data dir, the database on another path: no shared folder.
    url = f"sqlite:///{(tmp_path / 'db' / 'vrm.db').as_posix()}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url, issuer=PUBLIC)
    assert _warnings(caplog, settings) == []


def test_postgresql_is_not_warned_of(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = "postgresql+psycopg://vrm@db.example.org/vrm"
    settings = Settings(data_dir=tmp_path, database_url=url, issuer=PUBLIC)
    assert _warnings(caplog, settings) == []


@pytest.mark.parametrize(("issuer", "warned"), [(PUBLIC, True), ("http://127.0.0.1:8000", False)])
def test_vrm_serve_warns_at_start_up(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    issuer: str,
    warned: bool,
) -> None:
    served: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda *_a, **kw: served.append(kw))
    env = {"VRM_DATA_DIR": str(tmp_path), "VRM_ISSUER": issuer}
    runner = CliRunner()
    assert runner.invoke(cli.app, ["init"], env=env).exit_code == 0
    with caplog.at_level("WARNING", logger="vrm.keys.layout"):
        result = runner.invoke(cli.app, ["serve"], env=env)
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    expected = [_message(tmp_path)] if warned else []
    assert [r.getMessage() for r in caplog.records] == expected
