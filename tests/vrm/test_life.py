"""A customer's whole life, with the database read at every step.

Sign-up, two log-ins and a failed one, a profile, 20 history events
labelled gift, private and not_for_me (five private from the start, one made
private later), two vendors (one registered by the operator, one
dynamically), grants, reads through /v1/data and the feed, a refresh, a
deposit, a narrowing, the vendor renaming itself, receipts, a revocation,
an expiry, the deposit deleted, an export and the erasure
(tests/vrm/life.py walks it). After each step every table and column is
read, and on SQLite the bytes of vrm.db and its WAL.

Each test checks one promise over the whole walk, so one broken promise
fails one test, named for it. What docs/threat-model.md lists as kept on
purpose after an erasure (the vendors' tombstones) is the only exception.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest
from fastapi import FastAPI

from tests.vrm.life import Life, Row, Snapshot, cell_bytes, walk
from tests.vrm.test_at_rest import _found
from vrm.catalogue import DATA_KEYS
from vrm.catalogue.history import HistoryEvent
from vrm.crypto import aead
from vrm.records import sealing
from vrm.settings import Settings

# The database files exist on SQLite only; rows are read on both backends.
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])
_ID = re.compile(r"^(vnd_)?[0-9a-f]{32}$|^vnd_[A-Za-z0-9_-]+$")
_TIME = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d")


# One walk per backend, shared by the tests: a walk takes seconds, and what
# it leaves (rows and bytes read at each step) is only ever read.
_WALKS: dict[str, Life] = {}


@pytest.fixture
def life(backend: str, request: pytest.FixtureRequest) -> Life:
    if backend not in _WALKS:
        app: FastAPI = request.getfixturevalue("app")
        settings: Settings = request.getfixturevalue("settings")
        _WALKS[backend] = walk(app, settings)
    return _WALKS[backend]


def _mentions(row: Row, needle: str | bytes) -> bool:
    if isinstance(needle, bytes):
        return any(needle in cell_bytes(v) for v in row.values())
    return any(_found(cell_bytes(v), needle) for v in row.values())


def _rows_mentioning(snapshot: Snapshot, needles: list[str | bytes]) -> list[tuple[str, str, Row]]:
    return [
        (snapshot.step, name, row)
        for name, rows in snapshot.rows.items()
        for row in rows
        if any(_mentions(row, n) for n in needles)
    ]


def _personal_values(life: Life) -> list[str | bytes]:
    return [life.person.email, life.person.email.split("@")[0], *life.markers]


# -- what the customer wrote --------------------------------------------------


def test_no_row_holds_the_email_or_a_personal_value_at_any_step(life: Life) -> None:
    needles = _personal_values(life)
    assert [hit for s in life.snapshots for hit in _rows_mentioning(s, needles)] == []
    # The search finds them where they are meant to be.
    assert [n for n in life.markers if not _found(json.dumps(life.export).encode(), n)] == []


@SQLITE_ONLY
def test_no_database_file_holds_the_email_or_a_personal_value_at_any_step(life: Life) -> None:
    leaks = [
        (s.step, n)
        for s in life.snapshots
        for n in _personal_values(life)
        if s.files is not None and _found(s.files, str(n))
    ]
    assert leaks == []
    assert life.person.id.encode() in life.at("exported").files  # type: ignore[operator]


def test_every_sealed_value_is_padded_to_a_bucket(life: Life) -> None:
    overhead = 1 + aead.NONCE_BYTES + aead.TAG_BYTES
    sealed = [
        (name, c, blob)
        for name, rows in life.at("exported").rows.items()
        for row in rows
        for c, blob in row.items()
        if c in ("ciphertext", "email_ct", "wrapped")
    ]
    # A document is its fields, each sealed on its own, and the whole of it
    # (vrm/records/sealing.py).
    sealed = [
        (name, c, part)
        for name, c, blob in sealed
        for part in (sealing.unpack(blob).values() if sealing.by_field(blob) else [blob])
    ]
    # The email, the data keys, the profile whole and its 7 fields, the
    # preferences whole and their 5, and 20 events (the deposit was deleted).
    assert len(sealed) == 1 + len(DATA_KEYS) + 1 + 7 + 1 + 5 + 20
    unpadded = [
        (name, c, len(blob), blob[:1])
        for name, c, blob in sealed
        if blob[:1] != aead.FORMAT_V2
        or aead.padded_size(len(blob) - overhead - 1) != len(blob) - overhead
    ]
    assert unpadded == []


# -- private events (issue 13, defect 1) --------------------------------------


def _mask(value: Any, event_id: str) -> Any:
    """A value with everything that differs between any two events blurred
    (ids, times, numbers, ciphertext) and the event's own id marked; what
    is left (an op, a category, a label) is what could tell them apart."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return "<number>"
    if isinstance(value, bytes):
        return "<bytes>"
    if isinstance(value, (list, dict)):
        value = json.dumps(value, sort_keys=True)
    text = str(value)
    if event_id in text:
        return text.replace(event_id, "<event>")
    if _ID.match(text):
        return "<id>"
    if _TIME.match(text):
        return "<time>"
    return text


def _trace(snapshot: Snapshot, event_id: str) -> dict[str, list[str]]:
    """Per table, the rows that mention the event, blurred by _mask."""
    return {
        name: sorted(
            json.dumps({c: _mask(v, event_id) for c, v in row.items()}, sort_keys=True)
            for row in rows
            if _mentions(row, event_id.encode())
        )
        for name, rows in snapshot.rows.items()
    }


def _differences(life: Life, private: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for snapshot in life.after("history_added")[:-2]:  # until the erasure
        ordinary = _trace(snapshot, life.ordinary)
        assert any(ordinary.values()), snapshot.step  # the event is on record
        for event_id in private:
            trace = _trace(snapshot, event_id)
            found += [
                (snapshot.step, name, {"private": trace[name], "ordinary": ordinary[name]})
                for name in trace
                if trace[name] != ordinary[name]
            ]
    return found


def test_an_event_private_from_the_start_leaves_the_trace_of_an_ordinary_one(
    life: Life,
) -> None:
    assert _differences(life, life.private_from_start) == []


def test_an_event_made_private_later_leaves_the_trace_of_an_ordinary_one(life: Life) -> None:
    assert _differences(life, [life.made_private]) == []


# -- deposits (issue 13, defect 2) --------------------------------------------


def test_no_row_puts_a_deposited_event_beside_its_vendor(life: Life) -> None:
    beside = [
        (s.step, name, row)
        for s in life.after("deposited")
        for name, rows in s.rows.items()
        for row in rows
        if _mentions(row, life.deposited.encode())
        and any(_mentions(row, v.encode()) for v in life.vendor_ids)
    ]
    assert beside == []
    # The deposit is on record, under its event id, in the history itself.
    assert _rows_mentioning(life.at("deposited"), [life.deposited.encode()]) != []


def test_a_deposit_cannot_be_confirmed_by_hashing_a_guess_of_its_body(life: Life) -> None:
    # The vendor knows the body: an unkeyed hash of it confirms the deposit.
    body = HistoryEvent.model_validate(life.deposit_body).model_dump_json().encode()
    guesses: list[str | bytes] = [hashlib.sha256(body).digest(), hashlib.sha256(body).hexdigest()]
    assert [hit for s in life.snapshots for hit in _rows_mentioning(s, guesses)] == []


def test_once_the_customer_deletes_a_deposited_event_nothing_refers_to_it(life: Life) -> None:
    # The deposit record stays (its spent idempotency key stops a retry from
    # adding the event again, until the purge), naming no event.
    assert len(life.at("deposited").rows["vendor_deposit"]) == 1
    [kept] = life.at("deposit_deleted").rows["vendor_deposit"]
    assert sorted(kept) == ["body_hash", "created_on", "customer_id", "key_hash", "vendor_id"]
    assert not _mentions(kept, life.deposited.encode())


# -- the consent record (issue 13, defect 3) ----------------------------------


def _payload(jws: str) -> dict[str, Any]:
    part = jws.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_a_receipt_signed_after_the_vendor_renamed_itself_names_it_as_consented_to(
    life: Life,
) -> None:
    (receipt,) = life.receipts
    controller = _payload(receipt)["data_controller"]
    # Exactly these members; a record may add others (what changed since).
    consented = {k: controller.get(k) for k in life.vendor_b_as_consented}
    assert consented == life.vendor_b_as_consented


def test_the_grant_keeps_the_vendor_as_consented_to_in_its_first_change(life: Life) -> None:
    (view,) = life.grant_views
    first = json.dumps(view["changes"][0]["detail"])
    consented = life.vendor_b_as_consented
    missing = [
        v
        for v in (consented["name"], consented["privacy_notice"], *consented["contacts"])
        if v not in first
    ]
    assert missing == []


# -- erasure (issue 13, defect 4) ---------------------------------------------


def _customer_needles(life: Life) -> list[str | bytes]:
    return [
        life.person.id.encode(),
        life.person.email,
        life.email_index,
        *[e.encode() for e in [*life.events, life.deposited]],
        *[g.encode() for g in life.grant_ids],
        *[s.encode() for s in life.subjects],
    ]


def _erased(life: Life) -> list[Snapshot]:
    return life.after("erased")


def test_erasure_leaves_no_row_naming_the_customer(life: Life) -> None:
    # The vendors' notices are checked below: tombstones stay on purpose.
    left = [
        hit
        for s in _erased(life)
        for hit in _rows_mentioning(s, _customer_needles(life))
        if hit[1] not in ("feed_notice", "audit_entry")
    ]
    assert left == []
    # The audit log keeps its entries, which name the grants (random ids)
    # and nothing of the customer but a pseudonym whose salt is gone.
    grants = {g.encode() for g in life.grant_ids}
    unlinked = [n for n in _customer_needles(life) if n not in grants]
    logged = [
        hit
        for s in _erased(life)
        for hit in _rows_mentioning(s, unlinked)
        if hit[1] == "audit_entry"
    ]
    assert logged == []
    assert _rows_mentioning(life.at("exported"), [life.person.id.encode()]) != []


def test_erasure_keeps_only_tombstones_under_the_vendors_pairwise_subject(life: Life) -> None:
    kept = [
        (row["kind"], row["reason"], row["customer_id"], row["subject"] in life.subjects)
        for s in _erased(life)
        for _, name, row in _rows_mentioning(s, _customer_needles(life))
        if name == "feed_notice"
    ]
    # No "started" notice survives: it would say a grant once existed for
    # nothing a vendor still needs to act on.
    assert [k for k in kept if k[0] != "ended" or k[2] is not None or not k[3]] == []
    assert ("ended", "account_deleted", None, True) in kept


def test_erasure_removes_the_failed_login_counters_of_the_email(life: Life) -> None:
    address_only = life.address_key
    before = [r["key"] for r in life.at("exported").rows["login_throttle"]]
    assert [k for k in before if k != address_only] != []  # the mistyped password
    after = [r["key"] for s in _erased(life) for r in s.rows["login_throttle"]]
    assert [k for k in after if k != address_only] == []


@SQLITE_ONLY
def test_erasure_leaves_no_byte_of_the_customer_in_the_database_files(life: Life) -> None:
    # Grant ids and subjects stay in the tombstones on purpose.
    needles = [life.person.id, life.person.email, *life.events, life.deposited]
    left = [
        (s.step, n)
        for s in _erased(life)
        for n in needles
        if s.files is not None and _found(s.files, n)
    ]
    left += [(s.step, "email index") for s in _erased(life) if life.email_index in (s.files or b"")]
    assert left == []


# -- the export (issue 13, defect 5) ------------------------------------------


def test_the_export_names_the_pairwise_id_each_vendor_knows_the_customer_by(
    life: Life,
) -> None:
    text = json.dumps(life.export)
    assert [s for s in life.subjects if s not in text] == []
