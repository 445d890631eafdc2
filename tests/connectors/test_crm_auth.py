"""A hosted CRM's access token, taken with client credentials and taken
again: before it expires, and when the CRM refuses it (a Salesforce
session's timeout), so that a connector following the feed for days keeps
writing. The secret and the tokens never appear in an error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.config import Config
from connectors.sinks.crm_auth import LEEWAY, BearerToken, ClientCredentials, CrmAuthError
from connectors.sinks.open import open_sink
from connectors.sinks.salesforce import SalesforceError, SalesforceSink
from connectors.sinks.sql import SinkError
from tests.connectors.fake_salesforce import INSTANCE_URL, FakeSalesforce

TOKEN_URL = "https://login.example/tenant/oauth2/v2.0/token"
API = "https://org.example/api/data/v9.2/contacts"
SECRET = "entra-client-secret-value"


class Entra:
    """A token endpoint with ``expires_in`` and an API that takes only the
    tokens it issued and has not expired."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.expires_in = expires_in
        self.forms: list[dict[str, str]] = []
        self.valid: set[str] = set()
        self.sent: list[tuple[str, str, bytes]] = []
        self.refuse_client = False
        self.refuse_every_token = False
        self.transport = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if str(request.url) == TOKEN_URL:
            form = dict(parse_qsl(request.content.decode()))
            self.forms.append(form)
            if self.refuse_client or form.get("client_secret") != SECRET:
                body = {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
                return httpx.Response(401, json=body)
            token = f"token-{len(self.forms)}"
            self.valid.add(token)
            return httpx.Response(
                200,
                json={"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in},
            )
        auth = request.headers.get("authorization", "")
        self.sent.append((request.method, auth, request.content))
        if self.refuse_every_token or auth.removeprefix("Bearer ") not in self.valid:
            return httpx.Response(401, json={"error": {"code": "0x80048306", "message": "expired"}})
        return httpx.Response(200, json={"value": []})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def entra() -> Entra:
    return Entra()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(entra: Entra, clock: Clock) -> Iterator[tuple[httpx.Client, ClientCredentials]]:
    auth = ClientCredentials(
        TOKEN_URL,
        "client-id",
        SECRET,
        scope="https://org.example/.default",
        transport=entra.transport,
        clock=clock,
    )
    with httpx.Client(auth=auth, transport=entra.transport) as client:
        yield client, auth
    auth.close()


def test_one_token_is_taken_and_used_until_it_nears_its_end(
    entra: Entra, clock: Clock, api: tuple[httpx.Client, ClientCredentials]
) -> None:
    client, _ = api
    assert client.get(API).status_code == 200
    assert client.get(API).status_code == 200
    assert entra.forms == [
        {
            "grant_type": "client_credentials",
            "scope": "https://org.example/.default",
            "client_id": "client-id",
            "client_secret": SECRET,
        }
    ]
    clock.now += entra.expires_in - LEEWAY - 1
    assert client.get(API).status_code == 200
    assert len(entra.forms) == 1
    clock.now += 1
    assert client.get(API).status_code == 200
    assert len(entra.forms) == 2
    assert [auth for _, auth, _ in entra.sent] == ["Bearer token-1"] * 3 + ["Bearer token-2"]


def test_a_refused_token_is_replaced_and_the_request_sent_once_more(
    entra: Entra, api: tuple[httpx.Client, ClientCredentials]
) -> None:
    client, _ = api
    assert client.get(API).status_code == 200
    entra.valid.clear()  # the session timed out early
    r = client.patch(API, json={"firstname": "Ana"})
    assert r.status_code == 200
    assert [(m, a) for m, a, _ in entra.sent] == [
        ("GET", "Bearer token-1"),
        ("PATCH", "Bearer token-1"),
        ("PATCH", "Bearer token-2"),
    ]
    assert entra.sent[1][2] == entra.sent[2][2] == b'{"firstname":"Ana"}'


def test_a_crm_that_refuses_every_token_gets_one_more_try_per_request_at_most(
    entra: Entra, api: tuple[httpx.Client, ClientCredentials]
) -> None:
    client, _ = api
    entra.refuse_every_token = True
    # The first request's token was taken for it: its 401 is the answer
    # (the sink reports it), with no new token.
    assert client.get(API).status_code == 401
    assert (len(entra.forms), len(entra.sent)) == (1, 1)
    # Later requests: one new token and one more try each, never a loop.
    assert client.get(API).status_code == 401
    assert client.get(API).status_code == 401
    assert (len(entra.forms), len(entra.sent)) == (3, 5)


def test_a_refused_client_is_one_line_without_the_secret(entra: Entra, clock: Clock) -> None:
    auth = ClientCredentials(
        TOKEN_URL, "client-id", "wrong", transport=entra.transport, clock=clock
    )
    with pytest.raises(CrmAuthError) as caught:
        auth.check()
    assert str(caught.value) == "the CRM's token endpoint refused the client: invalid_client"
    entra.refuse_client = True
    good = ClientCredentials(TOKEN_URL, "client-id", SECRET, transport=entra.transport)
    with pytest.raises(CrmAuthError) as caught:
        good.check()
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (httpx.Response(503, text="<html>down</html>"), "answered 503"),
        (httpx.Response(200, json={"token_type": "Bearer"}), "gave no access_token"),
        (httpx.Response(200, text="not json"), "answered something else"),
    ],
)
def test_a_token_endpoint_that_answers_wrongly_is_said_in_one_line(
    answer: httpx.Response, said: str
) -> None:
    transport = httpx.MockTransport(lambda request: answer)
    auth = ClientCredentials(TOKEN_URL, "client-id", SECRET, transport=transport)
    with pytest.raises(CrmAuthError, match=said):
        auth.check()


def test_a_token_endpoint_that_does_not_answer_is_said() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    auth = ClientCredentials(TOKEN_URL, "client-id", SECRET, transport=httpx.MockTransport(down))
    with pytest.raises(CrmAuthError, match=r"does not answer \(ConnectError\)"):
        auth.check()


def test_the_secret_goes_over_https_only() -> None:
    with pytest.raises(CrmAuthError, match="https only"):
        ClientCredentials("http://login.example/token", "client-id", SECRET)
    ClientCredentials("http://127.0.0.1:9/token", "client-id", SECRET).close()


def test_redact_hides_the_secret_and_every_token_taken(
    api: tuple[httpx.Client, ClientCredentials],
) -> None:
    client, auth = api
    client.get(API)
    text = auth.redact(f"refused {SECRET} and token-1")
    assert text == "refused [token] and [token]"
    assert BearerToken("fixed").redact("a fixed token") == "a [token] token"


# -- the salesforce sink, against the fake org ---------------------------------


@pytest.fixture
def org() -> FakeSalesforce:
    return FakeSalesforce()


def _sink(org: FakeSalesforce, secret: str) -> SalesforceSink:
    key = org.consumer[0]
    auth = ClientCredentials(
        f"{INSTANCE_URL}/services/oauth2/token", key, secret, transport=org.transport
    )
    return SalesforceSink(INSTANCE_URL, auth, transport=org.transport, sleep=lambda _: None)


def test_the_salesforce_sink_writes_on_after_its_session_times_out(org: FakeSalesforce) -> None:
    sink = _sink(org, org.consumer[1])
    try:
        sink.upsert("subject-a", {"FirstName": "Ana", "LastName": "Silva"})
        org.expire_sessions()
        sink.upsert("subject-b", {"FirstName": "Bea", "LastName": "Sousa"})
        sink.upsert_many([("subject-c", {"LastName": "Costa"})])
    finally:
        sink.close()
    assert {org.by_subject(s)["LastName"] for s in ("subject-a", "subject-b", "subject-c")} == {  # type: ignore[index]
        "Silva",
        "Sousa",
        "Costa",
    }
    assert org.issued == ["00DFAKE!AQ.issued-1", "00DFAKE!AQ.issued-2"]


def test_a_wrong_consumer_secret_is_the_sinks_one_line_error(org: FakeSalesforce) -> None:
    sink = _sink(org, "not-the-secret")
    try:
        with pytest.raises(SalesforceError) as caught:
            sink.upsert("subject-a", {"LastName": "Silva"})
    finally:
        sink.close()
    assert str(caught.value) == (
        "Salesforce: the CRM's token endpoint refused the client: invalid_client"
    )
    assert org.contacts == {}


# -- the configuration ----------------------------------------------------------


def _config(**sink: Any) -> Config:
    return Config.model_validate(
        {
            "store_url": "https://store.example",
            "client_id": "vnd_x",
            "secret_env": "S",
            "sink": sink,
        }
    )


@pytest.mark.parametrize(
    ("sink", "said"),
    [
        (
            {"kind": "hubspot", "token_url": TOKEN_URL, "client_id": "c"},
            "the hubspot sink takes a private app's token_env",
        ),
        (
            {"kind": "salesforce", "url": INSTANCE_URL, "token_url": TOKEN_URL, "token_env": "T"},
            "give token_env or token_url, not both",
        ),
        (
            {"kind": "dynamics", "url": "https://org.example", "token_url": TOKEN_URL},
            "token_url needs client_id and client_secret_env",
        ),
        (
            {
                "kind": "dynamics",
                "url": "https://org.example",
                "token_url": TOKEN_URL,
                "client_id": "c",
                "client_secret_env": "VRM_TEST_UNSET_CRM_SECRET",
            },
            "the variable VRM_TEST_UNSET_CRM_SECRET is not set",
        ),
        (
            {
                "kind": "salesforce",
                "url": INSTANCE_URL,
                "token_url": "http://login.example/token",
                "client_id": "c",
                "client_secret_env": "VRM_TEST_CRM_SECRET",
            },
            "token_url: the client secret goes over https only",
        ),
        (
            {"kind": "sql", "url": "sqlite://", "removal": "archive"},
            "sink.removal: only the hubspot sink archives; sql deletes",
        ),
    ],
)
def test_a_sink_configuration_that_cannot_work_is_refused(
    sink: dict[str, str], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VRM_TEST_UNSET_CRM_SECRET", raising=False)
    monkeypatch.setenv("VRM_TEST_CRM_SECRET", SECRET)
    with pytest.raises(SinkError) as caught:
        open_sink(_config(**sink))
    assert said in str(caught.value)
    assert SECRET not in str(caught.value)
