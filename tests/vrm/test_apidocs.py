"""The API documentation pages load nothing from off this origin, and run
under the strict policy of the other pages (vrm/apidocs.py).

The plain HTTP tests read the pages as served; the browser test opens them
in Debian's Chromium (as tests/consent/test_browser.py does, and with its
playwright-core), where the Content-Security-Policy is enforced and every
request the page makes is seen."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.liveserver import LiveServer
from tests.nodejs import CHROMIUM, browser_node

BROWSER_DIR = Path(__file__).resolve().parents[1] / "consent" / "browser"
NODE_TIMEOUT = 120
NONCE = r"'nonce-([A-Za-z0-9_-]{22})'"
CSP = re.compile(
    rf"default-src 'none'; style-src {NONCE}; script-src {NONCE}; connect-src 'self'; "
    r"img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@pytest.fixture(scope="module")
def plain_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from vrm import migrate
    from vrm.app import create_app
    from vrm.keys import server as server_keys
    from vrm.settings import Settings

    # What `vrm init` does, then the app.
    settings = Settings(data_dir=tmp_path_factory.mktemp("apidocs"))
    migrate.upgrade(settings)
    server_keys.open_key_store(settings, create=True)
    app: FastAPI = create_app(settings)
    with TestClient(app) as client:
        yield client


def test_docs_page_names_only_this_origin_and_has_the_strict_policy(
    plain_client: TestClient,
) -> None:
    r = plain_client.get("/docs")
    assert r.status_code == 200, r.text
    csp = CSP.fullmatch(r.headers["content-security-policy"])
    assert csp is not None, r.headers["content-security-policy"]
    nonce = csp.group(1)
    assert csp.group(2) == nonce
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert re.findall(r"https?:|//", r.text) == []
    sources = re.findall(r'(?:src|href)="([^"]*)"', r.text)
    assert sources
    for source in sources:
        assert source.startswith("/docs/assets/"), source
        asset = plain_client.get(source)
        assert asset.status_code == 200, source
    # Every element that loads or runs something carries this answer's nonce.
    tags = re.findall(r"<(?:script|link)\b[^>]*>", r.text)
    assert tags
    assert all(f'nonce="{nonce}"' in tag for tag in tags), tags
    assert (
        plain_client.get("/docs").headers["content-security-policy"]
        != r.headers["content-security-policy"]
    )


@pytest.fixture(scope="module")
def server(shared_live_server: LiveServer) -> LiveServer:
    return shared_live_server


@pytest.fixture(scope="module")
def seen(server: LiveServer) -> dict[str, Any]:
    node = browser_node(BROWSER_DIR)
    done = subprocess.run(
        [node, str(BROWSER_DIR / "docs.mjs"), "--issuer", server.url, "--chromium", str(CHROMIUM)],
        cwd=BROWSER_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"the browser run failed:\n{done.stderr}\n{done.stdout}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("name", ["redoc.standalone.js", "..%2F__init__.py", "nothing.js"])
def test_only_the_pages_assets_are_served(plain_client: TestClient, name: str) -> None:
    r = plain_client.get(f"/docs/assets/{name}")
    assert r.status_code == 404, r.text


def test_redoc_is_not_served(plain_client: TestClient) -> None:
    """ReDoc needs the policy loosened (vrm/apidocs.py)."""
    r = plain_client.get("/redoc")
    assert r.status_code == 404, r.text


def test_docs_page_renders_in_a_browser_under_its_policy_from_this_origin_alone(
    seen: dict[str, Any], server: LiveServer
) -> None:
    visit = seen["swagger"]
    assert "failed" not in visit, visit
    assert visit["status"] == 200
    assert CSP.fullmatch(visit["csp"]), visit["csp"]
    # Every operation of the document is drawn.
    assert visit["rendered"] > 20, visit
    assert visit["csp_violations"] == []
    assert visit["page_errors"] == []
    assert visit["console_errors"] == []
    off_origin = [url for url in visit["requests"] if not url.startswith(server.url + "/")]
    assert off_origin == []
    assert server.url + "/openapi.json" in visit["requests"]


def test_the_browser_reports_a_violation_when_there_is_one(seen: dict[str, Any]) -> None:
    """So that no violation above means none happened."""
    assert seen["canary"]["csp_violations"] == [
        {"directive": "style-src-elem", "blocked": "inline"}
    ]
