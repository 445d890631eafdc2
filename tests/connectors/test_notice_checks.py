"""The connector refuses every notice that is not the store's, for this
client, now: and says why with RFC 8935's error codes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey, KeySet

from connectors import notices
from connectors.notices import Refused

ISSUER = "https://store.example"
CLIENT = "vnd_books"
EVENT = ISSUER + notices.EVENT_PATH


def _key(kid: str = "k1") -> ECKey:
    key = ECKey.generate_key("P-256", {"kid": kid, "use": "sig", "alg": "ES256"})
    return key


STORE_KEY = _key()


def _claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT,
        "jti": "a" * 32,
        "iat": int(time.time()),
        "txn": "7",
        "sub_id": {"format": "opaque", "id": "subject-1"},
        "events": {
            EVENT: {
                "grant_id": "g1",
                "reason": "narrowed",
                "categories": ["profile"],
                "fields": ["profile.email"],
                "event_timestamp": int(time.time()),
                "initiating_entity": "user",
                "required_action": "delete_copies",
            }
        },
    }
    claims.update(changes)
    return claims


def _token(claims: dict[str, Any], key: ECKey = STORE_KEY, **header: Any) -> bytes:
    protected = {"alg": "ES256", "typ": "secevent+jwt", "kid": key.kid, **header}
    return jws.serialize_compact(protected, json.dumps(claims), key, algorithms=["ES256"]).encode()


class Keys:
    def __init__(self, *keys: ECKey) -> None:
        self.keys = KeySet([ECKey.import_key(k.as_dict(private=False)) for k in keys])
        self.refreshed = 0

    def __call__(self, refresh: bool) -> KeySet:
        self.refreshed += refresh
        return self.keys


def _verify(token: bytes, keys: Keys | None = None, **kw: Any) -> notices.Notice:
    args: dict[str, Any] = {
        "keys": keys or Keys(STORE_KEY),
        "issuer": ISSUER,
        "client_id": CLIENT,
        "now": time.time(),
        "max_age": 600,
    }
    args.update(kw)
    return notices.verify(token, **args)


def test_a_notice_of_the_store_is_read() -> None:
    notice = _verify(_token(_claims()))
    assert notice.subject == "subject-1"
    assert notice.fields == ["profile.email"]
    assert (notice.grant_id, notice.reason) == ("g1", "narrowed")


@pytest.mark.parametrize(
    ("token", "err"),
    [
        (b"not a token", "invalid_request"),
        (_token(_claims(), typ="JWT"), "invalid_request"),
        (_token(_claims(iss="https://other.example")), "invalid_issuer"),
        (_token(_claims(aud="vnd_someone_else")), "invalid_audience"),
        (_token(_claims(iat=int(time.time()) - 3600)), "invalid_request"),
        (_token(_claims(iat=int(time.time()) + 3600)), "invalid_request"),
        (_token(_claims(events={})), "invalid_request"),
        (_token(_claims(sub_id={"format": "email", "id": "a@b.c"})), "invalid_request"),
        (_token({k: v for k, v in _claims().items() if k != "jti"}), "invalid_request"),
        (_token(_claims(events={EVENT: {"grant_id": "g1"}})), "invalid_request"),
    ],
    ids=[
        "not-a-jws",
        "wrong-typ",
        "other-issuer",
        "other-audience",
        "expired",
        "future",
        "no-event",
        "not-opaque-subject",
        "no-jti",
        "incomplete-event",
    ],
)
def test_a_bad_notice_is_refused_with_its_error_code(token: bytes, err: str) -> None:
    with pytest.raises(Refused) as refused:
        _verify(token)
    assert refused.value.err == err


def test_a_forged_signature_is_refused() -> None:
    forger = _key("k1")  # the store's key id, another key
    with pytest.raises(Refused) as refused:
        _verify(_token(_claims(), key=forger))
    assert refused.value.err == "invalid_key"


def test_an_unknown_key_is_looked_up_again_then_refused() -> None:
    keys = Keys(STORE_KEY)
    with pytest.raises(Refused) as refused:
        _verify(_token(_claims(), key=_key("k2")), keys=keys)
    assert refused.value.err == "invalid_key"
    assert keys.refreshed == 1


def test_a_key_the_store_rotated_in_is_found_on_a_second_look() -> None:
    rotated = _key("k2")
    current = Keys(STORE_KEY)

    def keys(refresh: bool) -> KeySet:
        return Keys(STORE_KEY, rotated).keys if refresh else current.keys

    assert _verify(_token(_claims(), key=rotated), keys=keys).subject == "subject-1"  # type: ignore[arg-type]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256"])
def test_another_algorithm_is_refused(alg: str) -> None:
    header = {"alg": alg, "typ": "secevent+jwt", "kid": STORE_KEY.kid}
    token = f"{_b64(header)}.{_b64(_claims())}.".encode()
    with pytest.raises(Refused) as refused:
        _verify(token)
    assert refused.value.err == "invalid_request"
