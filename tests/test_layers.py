"""Every module of vrm/ has a place in the layer contract (pyproject.toml,
checked by `lint-imports` in `make lint`); a module left out would be free
to import anything."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import vrm

ROOT = Path(__file__).resolve().parent.parent


def _layered() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = (c for c in config["contracts"] if c["type"] == "layers")
    return {m.strip() for layer in contract["layers"] for m in layer.split(":")}


def _modules() -> dict[str, bool]:
    """Every module of vrm, and whether it is a package."""
    return {m.name: m.ispkg for m in pkgutil.walk_packages(vrm.__path__, "vrm.")}


def _covered(module: str, layered: set[str]) -> bool:
    parts = module.split(".")
    return any(".".join(parts[:n]) in layered for n in range(1, len(parts) + 1))


def test_every_module_of_vrm_is_in_a_layer() -> None:
    layered = _layered()
    # A package split across layers (vrm.backup) is placed module by module.
    outside = [m for m, ispkg in _modules().items() if not ispkg and not _covered(m, layered)]
    assert sorted(outside) == []


def test_the_contract_names_only_modules_that_exist() -> None:
    assert sorted(_layered() - {"consent"} - set(_modules())) == []
