"""An event as a vendor sees it is projected from the stored JSON, without
validating it again (vrm/vendor_api/projection.py, ``shared_event``), and
spliced into the answer as bytes (``Raw``). Properties: the view is exactly
what the validated model gives, for any event the store accepts, including
one sealed before a field had its default; and splicing gives the bytes
serialising the whole body would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent import policy
from vrm.crypto.keystore import FileKeyStore
from vrm.history.models import HistoryEventPublic, StoredEvent
from vrm.keys.pairwise import pairwise_event_id
from vrm.keys.service import Vault
from vrm.vendor_api import projection


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    keystore = FileKeyStore(Path(tmp_path_factory.mktemp("keys")))
    keystore.create_server_key("pairwise-event")
    return Vault(keystore, cache_seconds=0)


def _oracle(vault: Vault, vendor_id: str, event_id: str, plaintext: bytes) -> dict[str, Any]:
    """The view as the validated models give it: the stored event parsed
    and validated, dumped as JSON, private items dropped, labels sorted."""
    stored = StoredEvent.model_validate_json(plaintext)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    public = HistoryEventPublic(
        **stored.model_dump(exclude={"shared"}), id=event_id, created_at=when, updated_at=when
    )
    shown = public.model_dump(mode="json", include=set(projection.EVENT_FIELDS), exclude_none=True)
    shown["items"] = [
        {**i, "labels": sorted(i["labels"])} for i in shown["items"] if policy.visible(i["labels"])
    ]
    shown["labels"] = sorted(shown["labels"])
    return {"id": pairwise_event_id(vault, vendor_id, event_id), **shown}


labels = st.sets(st.sampled_from(["gift", "not_for_me", "private"]))
# Names the store accepts: something left once whitespace is stripped.
text = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=30
).filter(str.strip)
money = st.decimals(min_value=0, max_value=Decimal("99999.99"), places=2)
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=-5, minutes=-30))]
)
items = st.fixed_dictionaries(
    {"name": text},
    optional={
        "sku": text,
        "quantity": st.integers(1, 100_000),
        "amount": money,
        "labels": labels,
    },
)
events = st.fixed_dictionaries(
    {
        "vendor": text,
        "type": st.sampled_from(["purchase", "return", "visit"]),
        "occurred_at": st.datetimes(
            min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - naive bounds, as hypothesis asks
            max_value=datetime(2030, 1, 1),  # noqa: DTZ001
            timezones=offsets,
        ),
    },
    optional={
        "items": st.lists(items, max_size=4),
        "amount": money,
        "currency": st.sampled_from(["EUR", "USD"]),
        "channel": st.sampled_from(["online", "store"]),
        "rating": st.integers(1, 5),
        "notes": st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60),
        "labels": labels,
    },
)


@settings(max_examples=300, deadline=None)
@given(event=events, source=st.sampled_from(["customer", "vendor:shop"]))
def test_the_view_from_the_stored_json_is_the_validated_models_view(
    vault: Vault, event: dict[str, Any], source: str
) -> None:
    stored = StoredEvent.model_validate({**event, "source": source})
    plaintext = stored.model_dump_json(exclude_none=True).encode()
    got = projection.shared_event(vault, "shop", "event-1", json.loads(plaintext))
    expected = projection.canonical_json(_oracle(vault, "shop", "event-1", plaintext))
    assert projection.canonical_json(got) == expected
    # The fast writer of an event's view writes the very same bytes.
    assert projection.event_json(got) == expected


def test_an_event_sealed_without_the_fields_that_have_defaults_reads_with_them(
    vault: Vault,
) -> None:
    # As an older writer could have sealed it: no items' quantity or labels,
    # no event labels, no shared flag.
    old = {
        "vendor": "Livraria",
        "type": "purchase",
        "occurred_at": "2024-02-03T04:05:06+01:00",
        "items": [{"name": "Book"}],
    }
    plaintext = json.dumps(old).encode()
    got = projection.shared_event(vault, "shop", "event-1", json.loads(plaintext))
    assert got == _oracle(vault, "shop", "event-1", plaintext)
    assert got["items"] == [{"name": "Book", "quantity": 1, "labels": []}]
    assert got["labels"] == []


@settings(max_examples=200, deadline=None)
@given(
    body=st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=5), inner, max_size=4)
            ),
            max_leaves=12,
        ),
        max_size=5,
    ),
    spliced=st.sets(st.text(max_size=8), max_size=3),
)
def test_spliced_values_give_the_bytes_serialising_them_would(
    body: dict[str, Any], spliced: set[str]
) -> None:
    with_raw = {
        k: projection.Raw(projection.canonical_json(v)) if k in spliced else v
        for k, v in body.items()
    }
    # Nested too: a Raw inside a list inside a dict.
    nested = {"outer": [with_raw, projection.Raw(b"[1,2]")]}
    assert projection.canonical_json(with_raw) == projection.canonical_json(body)
    assert json.loads(projection.canonical_json(nested)) == {"outer": [body, [1, 2]]}


def test_a_string_that_looks_like_a_splice_stays_a_string() -> None:
    # The marker holds a secret of the process; a customer's string cannot be one.
    forged = {"notes": "\u0000" + "0" * 24 + ":0", "h": projection.Raw(b"[]")}
    out = json.loads(projection.canonical_json(forged))
    assert out == {"notes": forged["notes"], "h": []}
