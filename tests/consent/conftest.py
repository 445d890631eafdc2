"""OAuth fixtures: a registered vendor and a browser-like consent driver.

The driver does what a browser does with the consent page: it reads the
form's hidden fields and checkboxes from the HTML, unticks what the test
says, and submits it. Tests see exactly what a vendor's client would: the
redirect to its callback, then the token endpoint's JSON.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from consent.vendors import service as vendors
from tests.conftest import Person

REDIRECT_URI = "https://shop.example/callback"
ISSUER = "http://127.0.0.1:8000"


@dataclass
class Vendor:
    client_id: str
    client_secret: str
    redirect_uri: str
    client: TestClient

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)

    def token(self, **form: str) -> Any:
        return self.client.post("/oauth/token", data=form, auth=self.auth)

    def exchange(self, code: str, verifier: str) -> Any:
        return self.token(
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )

    def refresh(self, refresh_token: str) -> Any:
        return self.token(grant_type="refresh_token", refresh_token=refresh_token)

    def introspect(self, token: str) -> dict[str, Any]:
        r = self.client.post("/oauth/introspect", data={"token": token}, auth=self.auth)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def register_vendor(app: FastAPI, name: str = "Bertrand Books", **extra: Any) -> Vendor:
    with Session(app.state.engine) as session:
        vendor, secret = vendors.register(
            session,
            app.state.vault,
            name=name,
            redirect_uris=[REDIRECT_URI],
            policy_uri="https://shop.example/privacy",
            **extra,
        )
    assert secret is not None
    return Vendor(vendor.id, secret, REDIRECT_URI, TestClient(app))


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.checkboxes: list[str] = []
        self.selects: dict[str, list[str]] = {}
        self._select: str | None = None
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "input" and a.get("type") == "checkbox":
            self.checkboxes.append(a["value"])
        elif tag == "select":
            self._select = a["name"]
            self.selects[a["name"]] = []
        elif tag == "option" and self._select:
            self.selects[self._select].append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def read_form(html: str) -> _Form:
    parser = _Form()
    parser.feed(html)
    return parser


@dataclass
class Authorization:
    """One run through /oauth/authorize."""

    params: dict[str, str]
    verifier: str
    page: Any = None
    form: _Form | None = None
    location: str | None = None
    query: dict[str, list[str]] = field(default_factory=dict)

    @property
    def code(self) -> str:
        return self.query["code"][0]


def start(
    person: Person,
    vendor: Vendor,
    scope: str = "profile.email:read preferences:read",
    **params: str,
) -> Authorization:
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "client_id": vendor.client_id,
        "redirect_uri": vendor.redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "purpose": "dpv:ServiceProvision",
    }
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    r = person.client.get("/oauth/authorize", params=query, follow_redirects=False)
    auth = Authorization(params=query, verifier=verifier, page=r)
    if r.status_code == 200:
        auth.form = read_form(r.text)
    elif r.status_code in (302, 303):
        auth.location = r.headers["location"]
        auth.query = parse_qs(urlsplit(auth.location).query)
    return auth


def decide(
    person: Person,
    auth: Authorization,
    *,
    allow: list[str] | None = None,
    decision: str = "allow",
    duration_days: str | None = None,
) -> Authorization:
    assert auth.form is not None, auth.page.text
    form = auth.form
    body: dict[str, str | list[str]] = dict(form.hidden)
    body["allow"] = list(form.checkboxes if allow is None else allow)
    body["duration_days"] = duration_days or form.selects["duration_days"][-1]
    body["decision"] = decision
    r = person.client.post("/oauth/authorize", data=body, follow_redirects=False)
    auth.page = r
    if r.status_code in (302, 303):
        auth.location = r.headers["location"]
        auth.query = parse_qs(urlsplit(auth.location).query)
    return auth


def authorize(
    person: Person,
    vendor: Vendor,
    scope: str = "profile.email:read preferences:read",
    *,
    allow: list[str] | None = None,
    **params: str,
) -> Authorization:
    auth = start(person, vendor, scope, **params)
    if auth.form is not None:
        decide(person, auth, allow=allow)
    assert auth.location is not None, auth.page.text
    assert "code" in auth.query, auth.location
    return auth


def tokens_for(
    person: Person, vendor: Vendor, scope: str = "profile.email:read preferences:read", **kw: Any
) -> dict[str, Any]:
    auth = authorize(person, vendor, scope, **kw)
    r = vendor.exchange(auth.code, auth.verifier)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def location_params(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
