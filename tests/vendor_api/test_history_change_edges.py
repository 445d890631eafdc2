"""Incremental history reads at their edges (vrm/vendor_api/events.py).

- The change log cannot tell a private event from another, so each event
  is opened to decide what the vendor hears. The customer may label an
  event private after its change-log row was read and before the event is
  opened: the event as opened decides, never the row.
- A read covers the log up to its high-water mark, inclusive: an event
  written at exactly that position is delivered now, or a vendor whose
  cursor moves past it would never hear of it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from sqlmodel import Session, col, select

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from tests.vendor_api.helpers import ME, WHEN, add_event, history_page
from vrm.feed.models import DataChange, FeedClock
from vrm.history import service as history
from vrm.keys.pairwise import pairwise_event_id
from vrm.vendor_api import events


def _make_private_when_opened(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI, customer_id: str, event_id: str
) -> list[str]:
    """Label the event private, committed, just before the read reads the
    event's row: after the change log was read. Returns the ids read since."""
    original = history.stamps_by_id
    opened: list[str] = []

    def stamps_by_id(conn: Any, event_ids: Any) -> Any:
        ids = list(event_ids)
        if event_id in ids and not opened:
            with Session(app.state.engine) as other:
                monkeypatch.setattr(history, "stamps_by_id", original)
                history.patch_event(
                    session=other,
                    vault=app.state.vault,
                    customer_id=customer_id,
                    event_id=event_id,
                    patch={"labels": ["private"]},
                    if_match=None,
                )
                monkeypatch.setattr(history, "stamps_by_id", stamps_by_id)
        opened.extend(ids)
        return original(conn, ids)

    monkeypatch.setattr(history, "stamps_by_id", stamps_by_id)
    return opened


def _log_row(app: FastAPI, event_id: str) -> DataChange:
    with Session(app.state.engine) as session:
        return session.exec(select(DataChange).where(col(DataChange.record_id) == event_id)).one()


def _hears(app: FastAPI, vendor: Vendor, row: DataChange) -> events.EventChange | None:
    with Session(app.state.engine) as session:
        vault = app.state.vault
        now = events.shown_now(session, vault, vendor.client_id, [row]).get(row.record_id)
        return events.event_change(vault=vault, vendor_id=vendor.client_id, change=row, now=now)


def test_the_event_as_opened_decides_not_the_log_row_read_before(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    shown = add_event(ana, occurred_at=WHEN.format(1), notes="shown, then private")
    secret = add_event(
        ana, occurred_at=WHEN.format(2), notes="private all along", labels=["private"]
    )
    shown_row = _log_row(app, shown)
    assert shown_row.op == "put"
    before = _hears(app, vendor, shown_row)
    assert before is not None
    assert before.dropped is None
    assert before.event is not None
    assert json.loads(before.event)["notes"] == "shown, then private"

    # Labelled private after its row was read: the stale row says "put",
    # the event says private, and the vendor hears only that it must drop it.
    r = ana.client.patch(f"{ME}/history/{shown}", json={"labels": ["private"]})
    assert r.status_code == 200, r.text
    dropped = pairwise_event_id(app.state.vault, vendor.client_id, shown)
    assert _hears(app, vendor, shown_row) == events.EventChange(dropped=dropped)
    # One private all along is not even named, whichever row is read.
    assert _hears(app, vendor, _log_row(app, secret)) is None


def test_a_label_change_during_a_read_reaches_the_vendor_on_its_next_read(
    monkeypatch: pytest.MonkeyPatch, app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    """A read is one snapshot (vrm/vendor_api/reads.py): it shows the event
    as it was when the read began, and the next read tells the vendor to
    drop it."""
    event_id = add_event(ana, occurred_at=WHEN.format(1), notes="soon private")
    t = tokens_for(ana, vendor, "history:read")
    first = history_page(vendor, t["access_token"], limit=10)
    r = ana.client.patch(f"{ME}/history/{event_id}", json={"rating": 5})
    assert r.status_code == 200, r.text

    opened = _make_private_when_opened(monkeypatch, app, ana.id, event_id)
    racing = history_page(vendor, t["access_token"], since=first["next_cursor"], limit=10)
    assert opened == [event_id]  # the label changed where it should
    assert [(e["notes"], e["labels"]) for e in racing["history"]] == [("soon private", [])]
    assert racing["deleted"] == []

    after = history_page(vendor, t["access_token"], since=racing["next_cursor"], limit=10)
    assert after["history"] == []
    assert after["deleted"] == [pairwise_event_id(app.state.vault, vendor.client_id, event_id)]
    assert "soon private" not in str(after)


def _high_water(app: FastAPI) -> int:
    with Session(app.state.engine) as session:
        return int(session.exec(select(FeedClock.seq).where(FeedClock.id == 1)).one())


def _position_of(app: FastAPI, event_id: str) -> int:
    with Session(app.state.engine) as session:
        return int(
            session.exec(select(DataChange.seq).where(col(DataChange.record_id) == event_id)).one()
        )


def test_an_event_written_at_the_high_water_mark_is_delivered(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor, "history:read")
    newest = add_event(ana, occurred_at=WHEN.format(1), notes="newest")
    assert _position_of(app, newest) == _high_water(app)  # the premise
    first = history_page(vendor, t["access_token"], limit=10)
    assert [e["notes"] for e in first["history"]] == ["newest"]

    later = add_event(ana, occurred_at=WHEN.format(2), notes="later")
    assert _position_of(app, later) == _high_water(app)
    page = history_page(vendor, t["access_token"], since=first["next_cursor"], limit=10)
    assert [e["notes"] for e in page["history"]] == ["later"]
    assert page["deleted"] == []
    # Nothing is delivered twice: the cursor is past the mark now.
    again = history_page(vendor, t["access_token"], since=page["next_cursor"], limit=10)
    assert (again["history"], again["deleted"]) == ([], [])
