"""Migration 0009: the change log stops telling which history events are
private (issue 13, D1), and events sealed before it read as once shared."""

from __future__ import annotations

import pytest
from alembic import command
from fastapi import FastAPI
from sqlalchemy import text
from sqlmodel import Session, select

from tests.conftest import Person
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.vendor_api.helpers import ME, add_event, feed_token, read_feed
from vrm.feed.models import DataChange
from vrm.history.models import HistoryRecord
from vrm.keys.pairwise import pairwise_event_id
from vrm.migrate import alembic_config
from vrm.settings import Settings

WHEN = "2026-11-0{}T10:00:00Z"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody: an upgrade from before 0019 goes down to an old schema,
    # which only customers whose root keys the server holds can.
    return settings.model_copy(update={"key_custody": "server"})


def _unflag(app: FastAPI, event_id: str) -> None:
    """Seal the event again as the code before 0009 did: without ``shared``."""
    vault = app.state.vault
    with Session(app.state.engine) as session:
        row = session.exec(select(HistoryRecord).where(HistoryRecord.id == event_id)).one()
        plain = vault.open(
            session,
            customer_id=row.customer_id,
            category="history",
            record_id=row.id,
            key_version=row.key_version,
            ciphertext=row.ciphertext,
        )
        assert b'"shared":' in plain
        legacy = plain.replace(b',"shared":0', b"").replace(b',"shared":1', b"")
        sealed = vault.seal(
            session,
            customer_id=row.customer_id,
            category="history",
            record_id=row.id,
            plaintext=legacy,
        )
        row.ciphertext = sealed.ciphertext
        session.add(row)
        session.commit()


def _ops(app: FastAPI) -> dict[str, str]:
    with Session(app.state.engine) as session:
        rows = session.exec(select(DataChange).where(DataChange.category == "history")).all()
    return {row.record_id: row.op for row in rows}


def test_upgrading_leaves_no_trace_of_which_events_are_private(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    vendor: Vendor = register_vendor(app)
    token = feed_token(vendor)
    tokens_for(ana, vendor, "history:read")
    plain = add_event(ana, occurred_at=WHEN.format(1), notes="plain")
    later = add_event(ana, occurred_at=WHEN.format(2), notes="later")
    _, cursors = read_feed(vendor, token)
    secret = add_event(ana, occurred_at=WHEN.format(3), notes="secret", labels=["private"])
    gone_secret = add_event(ana, occurred_at=WHEN.format(4), notes="s", labels=["private"])
    gone_plain = add_event(ana, occurred_at=WHEN.format(5), notes="gone")
    r = ana.client.patch(f"{ME}/history/{later}", json={"labels": ["private"]})
    assert r.status_code == 200, r.text
    for event_id in (gone_secret, gone_plain):
        assert ana.client.delete(f"{ME}/history/{event_id}").status_code == 204
    for event_id in (plain, later, secret):
        _unflag(app, event_id)

    # The log as the code before 0009 left it.
    config = alembic_config(settings)
    app.state.engine.dispose()
    command.downgrade(config, "0008")
    with app.state.engine.begin() as conn:
        seq = conn.execute(text("UPDATE feed_clock SET seq = seq + 1 RETURNING seq")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO data_change (customer_id, category, record_id, seq, op, at)"
                " SELECT customer_id, category, :gone, :seq, 'hidden', at FROM data_change"
                " WHERE record_id = :secret"
            ),
            {"gone": gone_secret, "seq": seq, "secret": secret},
        )
        for event_id, op in ((secret, "hidden"), (later, "delete")):
            conn.execute(
                text("UPDATE data_change SET op = :op WHERE record_id = :id"),
                {"op": op, "id": event_id},
            )
    assert _ops(app) == {
        plain: "put",
        later: "delete",
        secret: "hidden",
        gone_secret: "hidden",
        gone_plain: "delete",
    }
    app.state.engine.dispose()
    command.upgrade(config, "head")

    assert _ops(app) == {plain: "put", later: "put", secret: "put", gone_plain: "delete"}
    # Sealed before the flag, the events made private read as once shared:
    # the vendor that held ``later`` is told to drop it; the price is that
    # ``secret`` (private all along) is named in a deletion too.
    items, _ = read_feed(vendor, token, cursors[-1])
    ids = {
        e: pairwise_event_id(app.state.vault, vendor.client_id, e)
        for e in (later, secret, gone_plain)
    }
    assert [(i["type"], i["event_id"]) for i in items] == [
        ("delete", ids[secret]),
        ("delete", ids[later]),
        ("delete", ids[gone_plain]),
    ]
    assert "secret" not in str(items)
