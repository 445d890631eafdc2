"""``vrm-connector listen``: a notice the store signed for this client
purges exactly what it names, then is answered 202; anything else purges
nothing and is answered 400 with its RFC 8935 error code; a replay purges
nothing again."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from starlette.testclient import TestClient

from connectors import listen
from connectors.mapping import DEFAULT, FieldMap
from connectors.notices import EVENT_PATH
from connectors.sinks import Event
from connectors.sinks.sql import SQLSink
from connectors.state import State
from connectors.store import Store

STORE = "https://store.example"
CLIENT = "vnd_books"
KEY = ECKey.generate_key("P-256", {"kid": "store-1", "use": "sig", "alg": "ES256"})


def _store_api(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/.well-known/oauth-authorization-server":
        return httpx.Response(
            200, json={"issuer": STORE, "jwks_uri": f"{STORE}/oauth/jwks", "token_endpoint": "x"}
        )
    if request.url.path == "/oauth/jwks":
        return httpx.Response(200, json={"keys": [KEY.as_dict(private=False)]})
    return httpx.Response(404)


def _notice(fields: list[str], *, jti: str = "n1", key: ECKey = KEY, **claims: Any) -> bytes:
    body: dict[str, Any] = {
        "iss": STORE,
        "aud": CLIENT,
        "jti": jti,
        "iat": int(time.time()),
        "txn": "1",
        "sub_id": {"format": "opaque", "id": "subject-1"},
        "events": {
            STORE + EVENT_PATH: {
                "grant_id": "g1",
                "reason": "narrowed",
                "categories": sorted({f.split(".")[0] for f in fields}),
                "fields": fields,
                "event_timestamp": int(time.time()),
                "initiating_entity": "user",
                "required_action": "delete_copies",
            }
        },
    }
    body.update(claims)
    header = {"alg": "ES256", "typ": "secevent+jwt", "kid": key.kid}
    return jws.serialize_compact(header, json.dumps(body), key, algorithms=["ES256"]).encode()


class Connector:
    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(STORE, CLIENT, "unused", transport=httpx.MockTransport(_store_api))
        self.sink = SQLSink(f"sqlite:///{tmp_path / 'crm.db'}", FieldMap(DEFAULT))
        self.state = State(tmp_path / "state")
        app = listen.app(self.store, self.sink, FieldMap(DEFAULT), self.state, max_age=600)
        self.http = TestClient(app)

    def post(self, body: bytes, media_type: str = "application/secevent+jwt") -> httpx.Response:
        return self.http.post("/notices", content=body, headers={"content-type": media_type})

    def seed(self) -> None:
        self.sink.upsert(
            "subject-1", {"email": "ana@example.org", "given_name": "Ana", "preferences": {"a": 1}}
        )
        self.sink.upsert_events([Event("subject-1", "e1", {"type": "purchase"})])


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[Connector]:
    c = Connector(tmp_path)
    c.seed()
    yield c
    c.sink.close()
    c.store.close()


def test_a_notice_purges_exactly_the_fields_it_names(connector: Connector) -> None:
    r = connector.post(_notice(["profile.email"]))
    assert r.status_code == 202, r.text
    found = connector.sink.find("subject-1")
    assert found is not None
    assert found["email"] is None
    assert found["given_name"] == "Ana"
    assert found["preferences"] == {"a": 1}
    assert [e.event_id for e in connector.sink.events_of("subject-1")] == ["e1"]
    [applied] = connector.state.notices()
    assert (applied["jti"], applied["fields"]) == ("n1", ["profile.email"])


def test_a_notice_of_everything_takes_the_contact_and_its_events(connector: Connector) -> None:
    r = connector.post(_notice(["history", "preferences", "profile.email", "profile.given_name"]))
    assert r.status_code == 202
    assert connector.sink.find("subject-1") is None
    assert connector.sink.events_of("subject-1") == []


def test_a_replay_purges_nothing_again(connector: Connector) -> None:
    token = _notice(["profile.email"])
    assert connector.post(token).status_code == 202
    connector.seed()  # the vendor got the email again, under a new grant say
    assert connector.post(token).status_code == 202
    found = connector.sink.find("subject-1")
    assert found is not None
    assert found["email"] == "ana@example.org"
    assert connector.state.counts()["notices_replayed"] == 1


@pytest.mark.parametrize(
    ("token", "err"),
    [
        (_notice(["profile"], aud="vnd_other"), "invalid_audience"),
        (_notice(["profile"], iss="https://evil.example"), "invalid_issuer"),
        (_notice(["profile"], iat=int(time.time()) - 7200), "invalid_request"),
        (
            _notice(["profile"], key=ECKey.generate_key("P-256", {"kid": "store-1"})),
            "invalid_key",
        ),
        (b"garbage", "invalid_request"),
    ],
    ids=["wrong-audience", "wrong-issuer", "expired", "forged", "garbage"],
)
def test_a_bad_notice_purges_nothing(connector: Connector, token: bytes, err: str) -> None:
    r = connector.post(token)
    assert r.status_code == 400
    assert r.json()["err"] == err
    found = connector.sink.find("subject-1")
    assert found is not None
    assert found["email"] == "ana@example.org"
    assert connector.state.notices() == []
    assert connector.state.counts()["notices_refused"] == 1


def test_another_media_type_is_refused(connector: Connector) -> None:
    r = connector.post(_notice(["profile"]), media_type="application/json")
    assert r.status_code == 400
    assert r.json()["err"] == "invalid_request"
    assert connector.sink.find("subject-1") is not None


def test_a_shortened_grant_purges_nothing_yet(connector: Connector) -> None:
    event = {
        "grant_id": "g1",
        "reason": "shortened",
        "categories": ["profile"],
        "fields": ["profile.email"],
        "event_timestamp": int(time.time()),
        "initiating_entity": "user",
        "required_action": "delete_copies_at_expiry",
        "expires_at": int(time.time()) + 86400,
    }
    token = _notice(["profile.email"], jti="short", events={STORE + EVENT_PATH: event})
    assert connector.post(token).status_code == 202
    found = connector.sink.find("subject-1")
    assert found is not None
    assert found["email"] == "ana@example.org"
    assert connector.state.counts()["notices_noted"] == 1
    without = dict(event)
    del without["expires_at"]
    r = connector.post(_notice(["profile.email"], jti="bad", events={STORE + EVENT_PATH: without}))
    assert r.status_code == 400
    assert r.json()["err"] == "invalid_request"
