"""The example in docs/client.md type-checks (mypy --strict, the project's
pydantic plugin) and does what it says against the served store."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import httpx
from mypy import api as mypy

from client import VRMClient
from tests.client.conftest import consent
from tests.liveserver import LiveServer

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"


def _example(folder: Path) -> Path:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1, "docs/client.md should hold one python example"
    path = folder / "client_example.py"
    path.write_text(blocks[0])
    return path


def test_the_example_type_checks(tmp_path: Path) -> None:
    example = _example(tmp_path)
    out, err, status = mypy.run(
        [
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(example),
        ]
    )
    assert status == 0, out + err


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("client_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_runs(server: LiveServer, tmp_path: Path) -> None:
    customer = server.new_customer("docs")
    given = consent(server, customer, "profile:read preferences:read")
    r = httpx.get(
        f"{server.url}/v1/data",
        headers={"Authorization": f"Bearer {given.access_token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    example = _load(_example(tmp_path))
    assert example.tidy_up(server.url, customer.email, customer.password) == [
        server.vendor.client_id
    ]
    with VRMClient(server.url) as sdk:
        sdk.log_in(customer.email, customer.password)
        assert sdk.grant(given.grant_id).scopes == ["preferences:read"]
        assert [e.labels for e in sdk.history()] == [["gift"]]
        assert sdk.profile().given_name == "Ada"
