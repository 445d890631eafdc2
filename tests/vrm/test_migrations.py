"""The migrations build exactly the schema the models describe, the
change-log migration (0005) puts existing data on the feed, tokens
issued before 0006 keep working after it, and 0023 keys two tables by
their customer first."""

from __future__ import annotations

import secrets

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from consent.grants.models import Grant
from consent.oauth.models import OAuthToken
from tests.conftest import Person
from tests.consent.conftest import register_vendor, tokens_for
from tests.kit import bearer
from tests.vendor_api.helpers import (
    PROFILE,
    access_events,
    add_event,
    feed_token,
    put,
    read,
    read_feed,
)
from vrm.feed.models import DataChange, FeedClock
from vrm.migrate import alembic_config
from vrm.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Server custody: an upgrade from before 0019 goes down to an old schema,
    # which only customers whose root keys the server holds can.
    return settings.model_copy(update={"key_custody": "server"})


def test_migrated_schema_matches_the_models(app: FastAPI) -> None:
    with app.state.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_upgrading_to_the_change_log_puts_existing_data_on_the_feed(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    if not settings.is_sqlite:
        pytest.skip("one database is enough; the PostgreSQL one is shared by the run")
    put(ana, "profile", PROFILE)
    add_event(ana, occurred_at="2026-11-01T10:00:00Z", notes="old")
    add_event(ana, occurred_at="2026-11-02T10:00:00Z", notes="hidden", labels=["private"])
    vendor = register_vendor(app)
    t = tokens_for(ana, vendor, "profile.email:read history:read")
    revoked = tokens_for(ana, vendor, "history:read", purpose="dpv:Marketing")
    assert ana.client.delete(f"/api/v1/me/grants/{revoked['grant_id']}").status_code == 204
    expected = read_feed(vendor, feed_token(vendor))[0]

    # Back to before the change log (its tables and columns go), and up
    # again: the migration rebuilds the log from the data that is there.
    config = alembic_config(settings)
    app.state.engine.dispose()
    command.downgrade(config, "0004")
    command.upgrade(config, "head")

    with Session(app.state.engine) as session:
        changes = session.exec(select(DataChange)).all()
        clock = session.exec(select(FeedClock)).one()
        grant = session.get(Grant, t["grant_id"])
        assert grant is not None
    assert sorted(c.category for c in changes) == ["history", "history", "preferences", "profile"]
    assert grant.feed_seq == clock.seq == len(changes) + 1
    items = read_feed(vendor, feed_token(vendor))[0]
    assert [i["type"] for i in items] == ["snapshot"]
    # The tokens survived the round trip (a table rebuild once cascaded
    # into them), and the snapshot is what they read.
    body = read(vendor, t["access_token"]).json()
    assert items[0]["data"] == {c: body[c] for c in ("profile", "history")}
    snapshot = [i for i in expected if i["type"] == "snapshot"][0]
    assert items[0]["data"] == snapshot["data"]
    assert "hidden" not in str(items)
    history = vendor.client.get(
        "/v1/data/history",
        params={"limit": 10},
        headers=bearer(t["access_token"]),
    ).json()
    assert [e["notes"] for e in history["history"]] == ["old"]


def test_tokens_issued_before_token_ids_keep_working_after_the_upgrade(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    """0006 drops the unique constraints on the token hashes and indexes
    only the rows already there: their tokens, which carry no row id, are
    still found by hash. Down and up again, on both databases (their
    constraints are named differently)."""
    vendor = register_vendor(app)
    old = tokens_for(ana, vendor, "profile:read")
    issued_later = tokens_for(ana, vendor, "profile:read", prompt="consent")
    legacy_access = "vat_" + secrets.token_urlsafe(32)
    legacy_refresh = "vrt_" + secrets.token_urlsafe(32)
    vault = app.state.vault
    config = alembic_config(settings)
    app.state.engine.dispose()
    command.downgrade(config, "0005")
    with app.state.engine.begin() as conn:
        # What a token issued before 0006 looked like: no id in it.
        conn.execute(
            text("UPDATE oauth_token SET access_hash = :a, refresh_hash = :r WHERE id = :id"),
            {
                "a": vault.token_hash(legacy_access),
                "r": vault.token_hash(legacy_refresh),
                "id": old["access_token"][4:36],
            },
        )
    # 0005's unique constraint is back.
    with pytest.raises(IntegrityError), app.state.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO oauth_token (id, access_hash, family_id, vendor_id, scope,"
                " issued_at, expires_at) SELECT 'copy', access_hash, family_id, vendor_id,"
                " scope, issued_at, expires_at FROM oauth_token WHERE id = :id"
            ),
            {"id": old["access_token"][4:36]},
        )
    app.state.engine.dispose()
    command.upgrade(config, "head")

    def reads(token: str) -> int:
        r = vendor.client.get("/v1/data", headers=bearer(token))
        return r.status_code

    assert reads(legacy_access) == 200
    assert reads(old["access_token"]) == 401
    assert reads(issued_later["access_token"]) == 200
    r = vendor.refresh(legacy_refresh)
    assert r.status_code == 200, r.text
    assert reads(r.json()["access_token"]) == 200
    assert vendor.refresh(issued_later["refresh_token"]).status_code == 200
    with Session(app.state.engine) as session:
        marked = session.exec(select(OAuthToken).where(OAuthToken.legacy == True)).all()  # noqa: E712
    assert {row.id for row in marked} >= {
        old["access_token"][4:36],
        issued_later["access_token"][4:36],
    }


def test_access_events_and_pending_deposits_are_keyed_by_their_customer_first(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    """0023 puts the customer id first in both primary keys, so that Citus
    could distribute the tables by it (docs/scaling.md); compare_metadata
    does not compare primary keys, so this does. Down and up again, an
    access event stays."""
    put(ana, "profile", PROFILE)
    vendor = register_vendor(app)
    t = tokens_for(ana, vendor, "profile:read")
    assert read(vendor, t["access_token"]).status_code == 200
    config = alembic_config(settings)

    def keys() -> dict[str, list[str]]:
        inspector = inspect(app.state.engine)
        return {
            table: inspector.get_pk_constraint(table)["constrained_columns"]
            for table in ("access_event", "pending_deposit")
        }

    customer_first = {
        "access_event": ["customer_id", "id"],
        "pending_deposit": ["customer_id", "id"],
    }
    assert keys() == customer_first
    app.state.engine.dispose()
    command.downgrade(config, "0022")
    assert keys() == {"access_event": ["id"], "pending_deposit": ["id"]}
    app.state.engine.dispose()
    command.upgrade(config, "head")
    assert keys() == customer_first
    assert [(e.customer_id, e.vendor_id) for e in access_events(app, ana.id)] == [
        (ana.id, vendor.client_id)
    ]
