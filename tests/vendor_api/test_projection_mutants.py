"""What a vendor may see of a customer's data under a grant
(vrm/vendor_api/projection.py), as pure functions, without a server: the
fields a grant opens, an event as a vendor gets it, a projection's body,
its names and its ETag. Each test pins a rule a surviving mutant showed
nothing held in place (``make mutate``, docs/testing.md)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consent import policy
from consent.policy import Access, parse_scope
from vrm.crypto.keystore import FileKeyStore
from vrm.errors import NotFound
from vrm.history.models import StoredEvent
from vrm.keys.pairwise import pairwise_event_id
from vrm.keys.service import Vault
from vrm.vendor_api import projection
from vrm.vendor_api.edge import InsufficientScope, Reader

PROFILE = (
    "given_name",
    "family_name",
    "email",
    "phone",
    "postal_address",
    "birth_date",
    "language",
)
PREFERENCES = ("communication", "shopping", "dietary", "accessibility", "free")
WHEN = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)


def _accesses(*scopes: str) -> list[Access]:
    return [parse_scope(s) for s in scopes]


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    keystore = FileKeyStore(Path(tmp_path_factory.mktemp("keys")))
    keystore.create_server_key("pairwise-event")
    return Vault(keystore, cache_seconds=0)


def _reader(*scopes: str) -> Reader:
    return Reader(
        vendor_id="shop",
        customer_id="ana",
        grant_id="grant-1",
        purpose="dpv:ServiceProvision",
        subject="sub-ana-at-shop",
        accesses=_accesses(*scopes),
    )


# -- which fields a grant opens ---------------------------------------------


def test_a_whole_category_opens_every_field_in_catalogue_order() -> None:
    assert policy.fields_of(_accesses("profile:read"), "profile") == PROFILE
    assert policy.fields_of(_accesses("preferences:read"), "preferences") == PREFERENCES


def test_named_fields_open_only_those_in_catalogue_order() -> None:
    accesses = _accesses("profile.phone:read", "profile.email:read", "preferences.free:read")
    assert policy.fields_of(accesses, "profile") == ("email", "phone")
    assert policy.fields_of(accesses, "preferences") == ("free",)


def test_a_whole_category_beside_a_field_opens_every_field() -> None:
    accesses = _accesses("profile.email:read", "profile:read")
    assert policy.fields_of(accesses, "profile") == PROFILE


def test_a_category_not_granted_or_only_writable_opens_nothing() -> None:
    accesses = _accesses("profile.email:read", "history:write")
    assert policy.fields_of(accesses, "preferences") is None
    # history:write lets a vendor deposit, never read.
    assert policy.fields_of(accesses, "history") is None
    assert policy.fields_of([], "profile") is None


def test_the_readable_categories_in_catalogue_order() -> None:
    accesses = _accesses("history:read", "history:write", "preferences.free:read")
    assert policy.readable_categories(accesses) == ["preferences", "history"]
    assert policy.readable_categories(_accesses("history:write")) == []


def test_a_category_must_exist_and_be_granted() -> None:
    reader = _reader("profile.email:read", "history:write")
    projection.require_category(reader, "profile")
    with pytest.raises(NotFound) as unknown:
        projection.require_category(reader, "health")
    assert str(unknown.value) == "No data category 'health'."
    with pytest.raises(InsufficientScope) as refused:
        projection.require_category(reader, "history")
    assert refused.value.scope == "history:read"
    assert refused.value.headers() == {
        "WWW-Authenticate": 'Bearer realm="vrm", error="insufficient_scope", scope="history:read"'
    }


# -- an event as a vendor sees it -------------------------------------------


def _event(**changes: object) -> dict[str, Any]:
    """An event as it is sealed (the JSON of a StoredEvent)."""
    fields: dict[str, object] = {
        "vendor": "Livraria",
        "type": "purchase",
        "occurred_at": WHEN,
        "items": [
            {"name": "Book", "labels": {"not_for_me", "gift"}},
            {"name": "Secret", "labels": {"private", "gift"}},
            {"name": "Pen"},
        ],
        "amount": "12.50",
        "currency": "EUR",
        "labels": {"not_for_me", "gift"},
        "source": "vendor:shop",
    }
    stored = StoredEvent.model_validate({**fields, **changes})
    return dict(json.loads(stored.model_dump_json(exclude_none=True)))


def test_an_event_reaches_a_vendor_under_its_pairwise_id_without_private_items(
    vault: Vault,
) -> None:
    shared = projection.shared_event(vault, "shop", "event-1", _event())
    assert shared == {
        "id": pairwise_event_id(vault, "shop", "event-1"),
        "vendor": "Livraria",
        "type": "purchase",
        "occurred_at": "2026-05-01T10:00:00Z",
        "items": [
            {"name": "Book", "quantity": 1, "labels": ["gift", "not_for_me"]},
            {"name": "Pen", "quantity": 1, "labels": []},
        ],
        "amount": "12.50",
        "currency": "EUR",
        "labels": ["gift", "not_for_me"],
    }
    # Another vendor gets another id for the same event.
    assert projection.shared_event(vault, "other", "event-1", _event())["id"] != shared["id"]


def test_an_event_without_items_or_labels_has_empty_lists(vault: Vault) -> None:
    shared = projection.shared_event(
        vault, "shop", "event-1", _event(items=[], labels=set(), amount=None)
    )
    assert shared == {
        "id": pairwise_event_id(vault, "shop", "event-1"),
        "vendor": "Livraria",
        "type": "purchase",
        "occurred_at": "2026-05-01T10:00:00Z",
        "items": [],
        "currency": "EUR",
        "labels": [],
    }


# -- a projection -----------------------------------------------------------


DOCUMENTS: dict[str, dict[str, Any]] = {
    "profile": {"given_name": "Ana", "email": "ana@example.org", "phone": "+351 900 000 000"},
    "preferences": {"free": "window seat", "dietary": {"vegetarian": True}},
}


def test_a_projection_holds_only_the_granted_fields_and_names_them(vault: Vault) -> None:
    reader = _reader("profile.email:read", "profile.language:read", "preferences:read")
    got = projection.project(
        session=None,
        vault=vault,
        reader=reader,
        categories=["profile", "preferences"],
        documents=DOCUMENTS,
    )
    assert got.body == {
        "subject": "sub-ana-at-shop",
        "grant_id": "grant-1",
        "purpose": "dpv:ServiceProvision",
        # A granted field left empty is null: "not filled in", not "not granted".
        "profile": {"email": "ana@example.org", "language": None},
        "preferences": {
            "communication": None,
            "shopping": None,
            "dietary": {"vegetarian": True},
            "accessibility": None,
            "free": "window seat",
        },
    }
    assert got.categories == ["profile", "preferences"]
    assert got.fields == [
        "profile.email",
        "profile.language",
        *(f"preferences.{f}" for f in PREFERENCES),
    ]


def test_a_category_the_grant_does_not_open_is_left_out(vault: Vault) -> None:
    reader = _reader("profile.email:read", "history:write")
    got = projection.project(
        session=None,
        vault=vault,
        reader=reader,
        categories=["preferences", "profile", "history"],
        documents=DOCUMENTS,
    )
    assert got.body == {
        "subject": "sub-ana-at-shop",
        "grant_id": "grant-1",
        "purpose": "dpv:ServiceProvision",
        "profile": {"email": "ana@example.org"},
    }
    assert got.categories == ["profile"]
    assert got.fields == ["profile.email"]


def test_reading_without_a_session_or_documents_is_a_programming_error(vault: Vault) -> None:
    with pytest.raises(ValueError, match="needs a session or the documents"):
        projection.project(
            session=None, vault=vault, reader=_reader("profile:read"), categories=["profile"]
        )
    with pytest.raises(ValueError, match="needs a session"):
        projection.project(
            session=None, vault=vault, reader=_reader("history:read"), categories=["history"]
        )


def test_the_etag_is_of_the_canonical_bytes_a_vendor_gets() -> None:
    body = {"b": [1, "ç"], "a": {"y": None, "x": 2}}
    got = projection.Projection(body=body, categories=[], fields=[])
    expected = '{"a":{"x":2,"y":null},"b":[1,"ç"]}'.encode()
    assert got.json == expected
    assert got.etag == f'"{hashlib.sha256(expected).hexdigest()[:32]}"'
    assert len(got.etag) == 34
    # Same data, other key order: same bytes, same tag.
    same = projection.Projection(
        body={"a": {"x": 2, "y": None}, "b": [1, "ç"]}, categories=[], fields=[]
    )
    assert same.etag == got.etag
