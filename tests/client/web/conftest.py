"""The customer's pages through the app in-process (TestClient), and a
reader of the forms they render, as a browser would submit them.

On SQLite only: the pages call the service functions whose rules the API's
tests check on both backends; what is tested here is the pages' own part
(forms, CSRF, sessions, redirects, headers, who sees what)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD
from tests.kit import log_in


@pytest.fixture
def backend() -> str:
    return "sqlite"


@dataclass
class Form:
    action: str
    # Each field as the browser would send it: text, hidden, the selected
    # option, each ticked box (a name may repeat).
    fields: list[tuple[str, str]] = field(default_factory=list)

    def value(self, name: str) -> str | None:
        found = [v for n, v in self.fields if n == name]
        return found[0] if found else None

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.fields if n == name]

    def data(self, **changes: str | list[str]) -> dict[str, str | list[str]]:
        """The form as sent, with ``changes`` (a list for a repeated name;
        dots in names written as ``__``)."""
        sent: dict[str, str | list[str]] = {}
        for name, value in self.fields:
            before = sent.get(name)
            if before is None:
                sent[name] = value
            else:
                sent[name] = [*([before] if isinstance(before, str) else before), value]
        sent.update({k.replace("__", "."): v for k, v in changes.items()})
        return sent


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._select: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        elif not self.forms:
            return
        elif tag == "input" and "name" in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.forms[-1].fields.append((a["name"], a.get("value", "on")))
            elif kind != "submit":
                self.forms[-1].fields.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
            self.forms[-1].fields.append((a["name"], ""))
        elif tag == "option" and self._select and "selected" in a:
            fields = self.forms[-1].fields
            fields[-1] = (self._select, a.get("value", ""))
        elif tag == "textarea":
            self._textarea, self._text = a["name"], ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.forms[-1].fields.append((self._textarea, self._text))
            self._textarea = None


def forms(html: str) -> dict[str, Form]:
    """The page's forms by action (the log-out button's included)."""
    parser = _Forms()
    parser.feed(html)
    return {f.action: f for f in parser.forms}


def form(html: str, action: str) -> Form:
    found = forms(html)
    assert action in found, sorted(found)
    return found[action]


@dataclass
class Customer:
    email: str
    http: TestClient
    password: str = PASSWORD

    def get_form(self, page: str, action: str | None = None) -> Form:
        r = self.http.get(page)
        assert r.status_code == 200, r.text
        return form(r.text, action or page)


def customer(app: FastAPI, email: str) -> Customer:
    """A customer signed up and logged in through the API: the session cookie
    the pages read is the API's."""
    http = TestClient(app, follow_redirects=False)
    r = http.post("/api/v1/accounts", json={"email": email, "password": PASSWORD})
    assert r.status_code == 201, r.text
    assert log_in(http, email, PASSWORD).status_code == 200
    return Customer(email, http)


@pytest.fixture
def ana(client: TestClient, app: FastAPI) -> Iterator[Customer]:
    """``client`` first, so the app's lifespan runs around the test."""
    person = customer(app, "ana@example.org")
    yield person
    person.http.close()


@pytest.fixture
def bob(client: TestClient, app: FastAPI) -> Iterator[Customer]:
    person = customer(app, "bob@example.org")
    yield person
    person.http.close()


@pytest.fixture
def visitor(client: TestClient, app: FastAPI) -> Iterator[TestClient]:
    """A browser without a session."""
    with TestClient(app, follow_redirects=False) as http:
        yield http
