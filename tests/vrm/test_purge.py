"""The purge (vrm/purge.py): each kind goes once past its retention and not
before, in batches; on a timer in the server, and once from `vrm purge`."""

from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel, col, select
from typer.testing import CliRunner

from consent.grants import revocation
from consent.grants.models import Grant
from consent.oauth.models import AuthorizationCode, OAuthToken
from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for
from vrm import cli, purge
from vrm.accounts.models import LoginSession, LoginThrottle
from vrm.dbtypes import utcnow
from vrm.feed import changes, retention
from vrm.feed.models import DataChange, FeedNotice
from vrm.history.deposits import VendorDeposit
from vrm.settings import Settings
from vrm.vendor_api.models import AccessEvent

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
NOTHING = {kind.name: 0 for kind in purge.KINDS}
OPERATIONS_MD = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


@pytest.fixture
def now() -> datetime:
    return utcnow()


@pytest.fixture
def grant_id(ana: Person, vendor: Vendor) -> str:
    return str(tokens_for(ana, vendor, "profile.email:read history:read")["grant_id"])


def run(app: FastAPI, settings: Settings, now: datetime, **kw: Any) -> dict[str, int]:
    return purge.purge(app.state.engine, settings, now, pause=0, **kw)


def add(app: FastAPI, *rows: SQLModel) -> None:
    with Session(app.state.engine, expire_on_commit=False) as session:
        session.add_all(rows)
        session.commit()


def left(app: FastAPI, model: type[SQLModel], column: Any, among: set[Any]) -> set[Any]:
    """Which of ``among`` (values of ``column``) are still there."""
    with Session(app.state.engine) as session:
        return set(session.exec(select(column).where(col(column).in_(among))).all())


def _session(customer_id: str, created_at: datetime, expires_at: datetime) -> LoginSession:
    return LoginSession(
        token_hash=secrets.token_bytes(32),
        id=secrets.token_hex(16),
        customer_id=customer_id,
        created_at=created_at,
        expires_at=expires_at,
        last_used_at=created_at,
        key_version=1,
    )


def test_expired_sessions_go_at_once(
    app: FastAPI, settings: Settings, ana: Person, now: datetime
) -> None:
    gone, kept = _session(ana.id, now, now - SECOND), _session(ana.id, now, now + SECOND)
    add(app, gone, kept)
    assert run(app, settings, now) == {**NOTHING, "sessions": 1}
    hashes = {gone.token_hash, kept.token_hash}
    assert left(app, LoginSession, LoginSession.token_hash, hashes) == {kept.token_hash}
    assert ana.client.get("/api/v1/me").status_code == 200  # the live session stays


def _token(
    grant_id: str | None, vendor: Vendor, customer_id: str | None, **times: datetime | None
) -> OAuthToken:
    row_id = secrets.token_hex(16)
    return OAuthToken(
        id=row_id,
        access_hash=secrets.token_bytes(32),
        refresh_hash=secrets.token_bytes(32) if grant_id else None,
        family_id=secrets.token_hex(16) if grant_id else row_id,
        vendor_id=vendor.client_id,
        grant_id=grant_id,
        customer_id=customer_id,
        scope="history:read",
        **times,
    )


def test_tokens_go_a_day_after_nothing_of_them_can_be_used(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, grant_id: str, now: datetime
) -> None:
    old, young = now - DAY - SECOND, now - DAY + SECOND
    future = now + DAY

    def token(**times: datetime | None) -> OAuthToken:
        return _token(grant_id, vendor, ana.id, issued_at=old - DAY, **times)

    gone = {
        "both expired": token(expires_at=old, refresh_expires_at=old),
        "revoked": token(expires_at=future, refresh_expires_at=future, revoked_at=old),
        "client credentials expired": _token(
            None, vendor, None, issued_at=old - DAY, expires_at=old
        ),
    }
    kept = {
        "refresh within the grace": token(expires_at=old, refresh_expires_at=young),
        "revoked within the grace": token(
            expires_at=future, refresh_expires_at=future, revoked_at=young
        ),
        # Rotated, but kept while its refresh token could have been live:
        # a replay of it still revokes its family.
        "refreshed, replay still caught": token(
            expires_at=old, refresh_expires_at=future, refreshed_at=old
        ),
        "client credentials live": _token(None, vendor, None, issued_at=old, expires_at=future),
    }
    add(app, *gone.values(), *kept.values())
    assert run(app, settings, now) == {**NOTHING, "tokens": 3}
    ids = {t.id for t in [*gone.values(), *kept.values()]}
    assert left(app, OAuthToken, OAuthToken.id, ids) == {t.id for t in kept.values()}


def test_spent_tokens_go_in_batches_among_live_ones(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, grant_id: str, now: datetime
) -> None:
    old, future = now - 2 * DAY, now + DAY
    rows = [
        _token(grant_id, vendor, ana.id, issued_at=old, expires_at=old, refresh_expires_at=end)
        for end in [old, future] * 5
    ]
    add(app, *rows)
    assert run(app, settings, now, batch=2) == {**NOTHING, "tokens": 5}
    live = {t.id for t in rows if t.refresh_expires_at == future}
    assert left(app, OAuthToken, OAuthToken.id, {t.id for t in rows}) == live


def test_codes_go_a_day_after_they_expire(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, grant_id: str, now: datetime
) -> None:
    def code(expires_at: datetime) -> AuthorizationCode:
        return AuthorizationCode(
            code_hash=secrets.token_bytes(32),
            vendor_id=vendor.client_id,
            customer_id=ana.id,
            grant_id=grant_id,
            redirect_uri=vendor.redirect_uri,
            scope="history:read",
            code_challenge=secrets.token_urlsafe(32),
            code_challenge_method="S256",
            auth_time=expires_at - DAY,
            expires_at=expires_at,
            used_at=expires_at - SECOND,
        )

    gone, kept = code(now - DAY - SECOND), code(now - DAY + SECOND)
    add(app, gone, kept)
    assert run(app, settings, now) == {**NOTHING, "codes": 1}
    hashes = {gone.code_hash, kept.code_hash}
    assert left(app, AuthorizationCode, AuthorizationCode.code_hash, hashes) == {kept.code_hash}


def _access(customer_id: str, vendor: Vendor, at: datetime) -> AccessEvent:
    return AccessEvent(
        id=secrets.token_hex(16),
        at=at,
        vendor_id=vendor.client_id,
        grant_id="g",
        subject="s",
        customer_id=customer_id,
        purpose="dpv:ServiceProvision",
        categories=["profile"],
        fields=["profile.email"],
    )


def test_access_events_go_after_three_years(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, now: datetime
) -> None:
    three_years = timedelta(days=3 * 365)
    gone = [_access(ana.id, vendor, now - three_years - SECOND * i) for i in range(1, 6)]
    kept = _access(ana.id, vendor, now - three_years + SECOND)
    add(app, *gone, kept)
    assert run(app, settings, now, batch=2) == {**NOTHING, "access_events": 5}
    ids = {e.id for e in [*gone, kept]}
    assert left(app, AccessEvent, AccessEvent.id, ids) == {kept.id}


def _change(session: Session, customer_id: str, op: str, at: datetime) -> DataChange:
    row = DataChange(
        customer_id=customer_id,
        category="history",
        record_id=secrets.token_hex(16),
        seq=changes.tick(session),
        op=op,
        at=at,
    )
    session.add(row)
    return row


def test_change_log_deletions_go_after_ninety_days_and_raise_the_horizon(
    app: FastAPI, settings: Settings, ana: Person, now: datetime
) -> None:
    old, young = now - 90 * DAY - SECOND, now - 90 * DAY + SECOND
    with Session(app.state.engine, expire_on_commit=False) as session:
        gone = [_change(session, ana.id, changes.DELETE, old) for _ in range(3)]
        kept = [
            _change(session, ana.id, changes.PUT, old),  # a live event's row
            _change(session, ana.id, changes.DELETE, young),
        ]
        session.commit()
        seqs = [row.seq for row in gone]
        ids = {row.record_id for row in [*gone, *kept]}
        kept_ids = {row.record_id for row in kept}
        assert retention.horizon(session) == 0
    assert run(app, settings, now, batch=2) == {**NOTHING, "feed_deletions": 3}
    assert left(app, DataChange, DataChange.record_id, ids) == kept_ids
    with Session(app.state.engine) as session:
        assert retention.horizon(session) == max(seqs)
    # The horizon never goes back.
    with Session(app.state.engine) as session:
        retention.raise_horizon(session, 1)
        session.commit()
        assert retention.horizon(session) == max(seqs)


def _notice(vendor: Vendor, grant_id: str, kind: str, reason: str | None, at: datetime) -> Any:
    def make(session: Session) -> FeedNotice:
        row = FeedNotice(
            seq=changes.tick(session),
            vendor_id=vendor.client_id,
            grant_id=grant_id,
            kind=kind,
            reason=reason,
            fields=["history"] if kind == "ended" else [],
            at=at,
        )
        session.add(row)
        return row

    return make


def test_tombstones_go_after_ninety_days_but_an_expiry_stays_with_its_grant(
    app: FastAPI, settings: Settings, vendor: Vendor, grant_id: str, now: datetime
) -> None:
    old, young = now - 90 * DAY - SECOND, now - 90 * DAY + SECOND
    gone_grant = secrets.token_hex(16)  # an erased account's grant: no row
    with Session(app.state.engine, expire_on_commit=False) as session:
        gone = [
            _notice(vendor, grant_id, "ended", "narrowed", old)(session),
            _notice(vendor, gone_grant, "ended", "expired", old)(session),
        ]
        kept = [
            _notice(vendor, grant_id, "ended", "revoked", young)(session),
            _notice(vendor, grant_id, "started", None, old)(session),
            # expire_due reads it to tell the expiry once: it goes with the grant.
            _notice(vendor, grant_id, "ended", "expired", old)(session),
        ]
        session.commit()
        seqs = {n.seq for n in [*gone, *kept]}
        kept_seqs = {n.seq for n in kept}
        top = max(n.seq for n in gone)
    assert run(app, settings, now) == {**NOTHING, "tombstones": 2}
    assert left(app, FeedNotice, FeedNotice.seq, seqs) == kept_seqs
    with Session(app.state.engine) as session:
        assert retention.horizon(session) == top


def test_an_expiry_is_told_once_though_its_tombstone_is_old(
    app: FastAPI, settings: Settings, vendor: Vendor, grant_id: str
) -> None:
    with Session(app.state.engine) as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        grant.expires_at = utcnow() - SECOND
        session.add(grant)
        session.commit()
        assert revocation.expire_due(session, app.state.vault, vendor_id=vendor.client_id) == 1
    later = utcnow() + 91 * DAY
    assert run(app, settings, later)["tombstones"] == 0
    with Session(app.state.engine) as session:
        assert revocation.expire_due(session, app.state.vault, vendor_id=vendor.client_id) == 0
        told = session.exec(select(FeedNotice).where(FeedNotice.reason == "expired")).all()
    assert [(n.grant_id, n.kind) for n in told] == [(grant_id, "ended")]


def test_throttle_counters_go_once_their_window_and_delay_are_over(
    app: FastAPI, settings: Settings, now: datetime
) -> None:
    window = timedelta(seconds=settings.login_window_seconds)
    old, young = now - window - SECOND, now - window + SECOND

    def counter(started: datetime, locked_until: datetime | None = None) -> LoginThrottle:
        return LoginThrottle(
            key=secrets.token_bytes(32),
            failures=3,
            window_started_at=started,
            locked_until=locked_until,
        )

    gone = [counter(old), counter(old - DAY, locked_until=old)]
    kept = [counter(young), counter(old - DAY, locked_until=young)]
    add(app, *gone, *kept)
    assert run(app, settings, now) == {**NOTHING, "login_throttle": 2}
    keys = {c.key for c in [*gone, *kept]}
    assert left(app, LoginThrottle, LoginThrottle.key, keys) == {c.key for c in kept}


def test_deposit_records_go_after_the_idempotency_window(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, now: datetime
) -> None:
    def deposit(created_on: date) -> VendorDeposit:
        return VendorDeposit(
            vendor_id=vendor.client_id,
            customer_id=ana.id,
            key_hash=secrets.token_bytes(32),
            body_hash=secrets.token_bytes(32),
            created_on=created_on,
        )

    # A record keeps only its day: it goes once that whole day is more than
    # the window ago, so a deposit late on the day before is still kept.
    horizon = (now - timedelta(days=7)).date()
    gone, kept = deposit(horizon - timedelta(days=1)), deposit(horizon)
    add(app, gone, kept)
    assert run(app, settings, now) == {**NOTHING, "deposits": 1}
    hashes = {gone.key_hash, kept.key_hash}
    assert left(app, VendorDeposit, VendorDeposit.key_hash, hashes) == {kept.key_hash}


def test_a_purge_stops_between_batches_when_the_server_stops(
    app: FastAPI, settings: Settings, ana: Person, vendor: Vendor, now: datetime
) -> None:
    add(app, *[_access(ana.id, vendor, now - 4 * 365 * DAY) for _ in range(3)])

    stopping = threading.Event()
    stopping.set()
    removed = run(app, settings, now, batch=2, stopping=stopping)
    assert removed == {**NOTHING, "access_events": 2}


def test_every_kind_and_its_setting_is_in_the_operators_table() -> None:
    text = OPERATIONS_MD.read_text()
    table = text[text.index("| kind | setting | default | why |") :]
    table = table[: table.index("\n\n")]
    documented = re.findall(r"^\| `([a-z_]+)` \| `(VRM_[A-Z_]+)` \|", table, re.MULTILINE)
    assert [kind for kind, _ in documented] == [kind.name for kind in purge.KINDS]
    for _, setting in documented:
        assert setting.removeprefix("VRM_").lower() in Settings.model_fields, setting


def test_vrm_purge_prints_what_it_removed_and_exits_0(
    app: FastAPI, settings: Settings, ana: Person
) -> None:
    with Session(app.state.engine) as session:
        session.add(_session(ana.id, utcnow() - DAY, utcnow() - SECOND))
        session.commit()
    env = {"VRM_DATA_DIR": str(settings.data_dir), "VRM_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(cli.app, ["purge"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == "".join(
        f"{kind.name}: {1 if kind.name == 'sessions' else 0}\n" for kind in purge.KINDS
    )
    assert result.stderr == ""


def test_the_server_purges_soon_after_it_starts_and_stops_cleanly(
    settings: Settings, ana: Person, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired = _session(ana.id, utcnow() - DAY, utcnow() - SECOND)
    add(app, expired)
    monkeypatch.setattr(purge, "FIRST_RUN_SECONDS", 0.0)
    runs: list[dict[str, int]] = []
    real = purge.purge

    def recorded(*args: Any, **kw: Any) -> dict[str, int]:
        runs.append(real(*args, **kw))
        return runs[-1]

    monkeypatch.setattr(purge, "purge", recorded)
    with TestClient(app):  # its lifespan starts the timer, and stops it
        deadline = time.monotonic() + 10
        while not runs and time.monotonic() < deadline:
            time.sleep(0.01)
    assert runs[0] == {**NOTHING, "sessions": 1}
    assert left(app, LoginSession, LoginSession.token_hash, {expired.token_hash}) == set()


def test_no_timer_when_the_interval_is_0(app: FastAPI, settings: Settings) -> None:
    quiet = settings.model_copy(update={"purge_interval_seconds": 0})
    assert purge.start(app.state.engine, quiet) is None
