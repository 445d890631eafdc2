"""Every module of vrm/ has a place in the layer contract (pyproject.toml,
checked by `lint-imports` in `make lint`); a module left out would be free
to import anything. And of client/, only the web pages may import the
server: a new client module is held to HTTP without being named."""

from __future__ import annotations

import pkgutil
import tomllib
from pathlib import Path

import grimp
import pytest
from importlinter.configuration import configure
from importlinter.contracts.forbidden import ForbiddenContract

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
    assert sorted(_layered() - {"consent", "client.web"} - set(_modules())) == []


# The client side: everything in client/ but the web pages reaches the
# server over HTTP only (the forbidden contract), and the web pages are a
# layer of the server.


def _http_only_contract_kept(imports: list[tuple[str, str]]) -> bool:
    """The forbidden contract of pyproject.toml, as `lint-imports` runs it,
    over a made-up graph holding ``imports``."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (options,) = (
        {k: v for k, v in c.items() if k not in ("name", "type")}
        for c in config["contracts"]
        if c["name"] == "connectors and client reach the server over HTTP only"
    )
    configure()
    graph = grimp.ImportGraph()
    for module in ("vrm", "vrm.db", "consent", "consent.pages", "client", "connectors"):
        graph.add_module(module)
    # What the pages do import: the contract's exception must match something.
    for importer, imported in [
        ("client.web.pages", "vrm.db"),
        ("client.web.pages", "consent.pages"),
        *imports,
    ]:
        graph.add_module(importer)
        graph.add_import(importer=importer, imported=imported)
    contract = ForbiddenContract(
        name="http only",
        session_options={"root_packages": config["root_packages"]},
        contract_options=options,
    )
    return bool(contract.check(graph, verbose=False).kept)


def test_the_web_pages_may_import_the_server() -> None:
    assert _http_only_contract_kept([])


@pytest.mark.parametrize(
    "imports",
    [
        # A client module nobody has written yet is held without being named.
        [("client.cli", "vrm.db")],
        [("client.cli.login", "consent.pages")],
        [("client.sync", "vrm.db")],
        [("client", "consent")],
        [("connectors.sync", "vrm.db")],
    ],
)
def test_any_other_client_module_importing_the_server_breaks_the_contract(
    imports: list[tuple[str, str]],
) -> None:
    assert not _http_only_contract_kept(imports)


def test_no_other_client_module_imports_the_web_pages() -> None:
    """Through the pages, the SDK or the CLI would reach the server's
    internals with the contract above kept (it ignores the pages' imports)."""
    graph = grimp.build_graph("client")
    importers = graph.find_downstream_modules("client.web", as_package=True)
    assert sorted(m for m in importers if not m.startswith("client.web.")) == []


def test_the_web_pages_are_a_layer_below_the_composition() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = (c for c in config["contracts"] if c["type"] == "layers")
    layers = [layer.split(":")[0].strip() for layer in contract["layers"]]
    assert layers[1:3] == ["client.web", "vrm.vendor_api"]
    assert "vrm.app" in contract["layers"][0]
