"""Every page answers under the strict headers of consent.pages.page: a
CSP whose only source is this answer's nonce, no framing, no caching."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from client.web.render import NAV
from tests.client.web.conftest import Customer

# Every page of the navigation, and the one it does not list.
PAGES = [entry.path for entry in NAV] + ["/data/history/new"]


def _csp_nonce(csp: str, images: str = "'none'") -> str:
    found = re.fullmatch(
        r"default-src 'none'; style-src 'nonce-([A-Za-z0-9_-]{22})'; "
        rf"img-src {images}; "
        r"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        csp,
    )
    assert found, csp
    return found.group(1)


@pytest.mark.parametrize("path", PAGES)
def test_page_has_strict_headers_and_a_fresh_nonce_on_its_style(ana: Customer, path: str) -> None:
    first, second = ana.http.get(path), ana.http.get(path)
    assert first.status_code == 200, first.text
    nonce = _csp_nonce(first.headers["content-security-policy"])
    assert _csp_nonce(second.headers["content-security-policy"]) != nonce
    assert first.headers["x-frame-options"] == "DENY"
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["x-content-type-options"] == "nosniff"
    assert re.findall(r"<style[^>]*>", first.text) == [f'<style nonce="{nonce}">']
    assert "<script" not in first.text


@pytest.mark.parametrize(
    ("path", "images"),
    # The login page is consent's, whose pages may show a vendor's logo.
    [("/", "'none'"), ("/goodbye", "'none'"), ("/login", "https:")],
)
def test_pages_without_a_session_have_the_same_headers(
    visitor: TestClient, path: str, images: str
) -> None:
    r = visitor.get(path)
    assert r.status_code == 200, r.text
    _csp_nonce(r.headers["content-security-policy"], images)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def test_sign_up_page_has_the_same_headers(visitor: TestClient) -> None:
    r = visitor.get("/signup")
    assert r.status_code == 200, r.text
    _csp_nonce(r.headers["content-security-policy"])
    assert r.headers["x-frame-options"] == "DENY"
    csrf_cookie = r.headers["set-cookie"]
    assert csrf_cookie.startswith("vrm_signup_csrf=")
    assert "HttpOnly" in csrf_cookie
    assert "SameSite=strict" in csrf_cookie
    assert "Path=/signup" in csrf_cookie
