"""The vendor API's token edge and its record of reads
(vrm/vendor_api/edge.py, accesses.py), without a server: the RFC 6750
challenge each refusal carries, the reader a token stands for, and the
access_event row a read leaves. Each test pins a rule a surviving mutant
showed nothing held in place (``make mutate``, docs/testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select
from sqlmodel import Session

from consent.audit.models import AuditEntry, AuditHead
from consent.grants.models import Grant
from consent.oauth import bearer
from consent.oauth.store import TokenRow
from consent.oauth.tokens import ActiveToken
from consent.policy import parse_scope
from consent.vendors.models import Vendor
from vrm.accounts.models import Customer
from vrm.crypto.keystore import FileKeyStore
from vrm.keys.pairwise import pairwise_subject
from vrm.keys.service import Vault
from vrm.vendor_api import accesses, edge
from vrm.vendor_api.edge import InsufficientScope, InvalidToken, Reader
from vrm.vendor_api.models import AccessEvent

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    keystore = FileKeyStore(Path(tmp_path_factory.mktemp("keys")))
    keystore.create_server_key("pairwise-subject")
    return Vault(keystore, cache_seconds=0)


def _active(*, customer_id: str | None = "ana", grant: bool = True) -> ActiveToken:
    row = TokenRow(
        id="0" * 32,
        access_hash=b"a" * 32,
        refresh_hash=None,
        legacy=None,
        family_id="family",
        vendor_id="shop",
        grant_id="grant-1" if grant else None,
        customer_id=customer_id,
        scope="profile.email:read",
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=1),
        refresh_expires_at=None,
        refreshed_at=None,
        revoked_at=None,
        refresh_scope=None,
    )
    the_grant = Grant(
        id="grant-1",
        customer_id="ana",
        vendor_id="shop",
        scopes=["profile.email:read"],
        purpose="dpv:CustomerCare",
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW + timedelta(days=1),
    )
    return ActiveToken(
        token=row,
        vendor=Vendor(id="shop", name="Shop", created_at=NOW),
        grant=the_grant if grant else None,
        accesses=[parse_scope("profile.email:read")],
        openid=False,
    )


# -- RFC 6750 3 challenges --------------------------------------------------


def test_no_token_gets_a_bare_challenge_and_a_bad_one_says_invalid_token() -> None:
    with pytest.raises(InvalidToken) as none_sent:
        bearer.active_token(None, None, {})  # type: ignore[arg-type]
    assert none_sent.value.detail == "Send an access token as Authorization: Bearer."
    # RFC 6750 3.1: no error code when the request carried no token.
    assert none_sent.value.headers() == {"WWW-Authenticate": 'Bearer realm="vrm"'}
    assert none_sent.value.status == 401
    assert none_sent.value.type_uri == "urn:vrm:problem:invalid-token"


SENT = {"authorization": "Bearer vat_sent"}


def test_an_inactive_token_is_refused_as_invalid_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[Any] = []

    def check(conn: Any, vault: Any, token: str) -> ActiveToken | None:
        asked.append(token)
        return None

    monkeypatch.setattr(bearer, "check_access_token", check)
    with pytest.raises(InvalidToken) as refused:
        bearer.active_token(None, None, SENT)  # type: ignore[arg-type]
    assert asked == ["vat_sent"]
    assert refused.value.detail == "The access token is not active."
    assert refused.value.headers() == {
        "WWW-Authenticate": 'Bearer realm="vrm", error="invalid_token"'
    }
    active = _active()
    monkeypatch.setattr(bearer, "check_access_token", lambda conn, vault, token: active)
    assert bearer.active_token(None, None, SENT) is active  # type: ignore[arg-type]


def test_insufficient_scope_names_the_scope_wanted_when_there_is_one() -> None:
    named = InsufficientScope("no", scope="history:read")
    assert named.status == 403
    assert named.extra == {"scope": "history:read"}
    assert named.headers() == {
        "WWW-Authenticate": 'Bearer realm="vrm", error="insufficient_scope", scope="history:read"'
    }
    bare = InsufficientScope("no")
    assert bare.extra == {}
    assert bare.headers() == {"WWW-Authenticate": 'Bearer realm="vrm", error="insufficient_scope"'}


# -- the reader a token stands for ------------------------------------------


def test_a_token_from_the_code_flow_stands_for_its_customer_and_grant(vault: Vault) -> None:
    active = _active()
    assert edge.reader_of(vault, active) == Reader(
        vendor_id="shop",
        customer_id="ana",
        grant_id="grant-1",
        purpose="dpv:CustomerCare",
        subject=pairwise_subject(vault, "shop", "ana"),
        accesses=[parse_scope("profile.email:read")],
    )


def test_a_grants_reader_is_the_one_a_token_holding_all_of_it_stands_for(vault: Vault) -> None:
    active = _active()
    assert active.grant is not None
    assert edge.reader_of_grant(vault, active.grant) == edge.reader_of(vault, active)
    wider = active.grant.model_copy(update={"scopes": ["profile:read", "history:read"]})
    assert edge.reader_of_grant(vault, wider).accesses == [
        parse_scope("profile:read"),
        parse_scope("history:read"),
    ]


def test_a_token_naming_no_customer_or_grant_reads_nothing(vault: Vault) -> None:
    for active in (
        _active(customer_id=None, grant=False),
        _active(customer_id=None),
        _active(grant=False),
    ):
        with pytest.raises(InsufficientScope) as refused:
            edge.reader_of(vault, active)
        assert str(refused.value) == edge.NO_CUSTOMER


# -- the record of a read ---------------------------------------------------

READER = Reader(
    vendor_id="shop",
    customer_id="ana",
    grant_id="grant-1",
    purpose="dpv:CustomerCare",
    subject="sub-ana",
    accesses=[],
)


def test_an_access_row_names_who_read_what_never_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accesses, "utcnow", lambda: NOW)
    row = accesses.access_row(READER, ["profile"], ["profile.email"])
    assert len(row["id"]) == 32
    assert set(row["id"]) <= set("0123456789abcdef")
    assert row == {
        "id": row["id"],
        "at": NOW,
        "vendor_id": "shop",
        "grant_id": "grant-1",
        "subject": "sub-ana",
        "customer_id": "ana",
        "purpose": "dpv:CustomerCare",
        "categories": ["profile"],
        "fields": ["profile.email"],
        "not_modified": False,
        "action": "read",
    }
    other = accesses.access_row(READER, ["history"], ["history"], action="write", not_modified=True)
    assert (other["action"], other["not_modified"]) == ("write", True)
    assert other["id"] != row["id"]


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    # What recording a read writes and reads: its access events, the audit
    # log's entries and head, and the customer's audit salt.
    for model in (Customer, AccessEvent, AuditHead, AuditEntry):
        model.__table__.create(engine)  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(insert(AuditHead.__table__).values(id=1, size=0))  # type: ignore[attr-defined]
        conn.execute(
            insert(Customer.__table__).values(  # type: ignore[attr-defined]
                id="ana",
                email_index=b"i",
                email_ct=b"c",
                key_version=1,
                password_hash="h",
                created_at=NOW,
                password_changed_at=NOW,
                audit_salt=bytes(32),
            )
        )
    yield engine
    engine.dispose()


def _stored(engine: Engine) -> list[tuple[Any, ...]]:
    table = AccessEvent.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                table.c.vendor_id,
                table.c.categories,
                table.c.fields,
                table.c.action,
                table.c.not_modified,
            )
        )
        return sorted(tuple(r) for r in rows)


def test_every_access_given_is_stored(engine: Engine) -> None:
    with engine.begin() as conn:
        accesses.add_accesses(conn, [], via="data")
        accesses.add_accesses(
            conn, [accesses.access_row(READER, ["profile"], ["profile.email"])], via="data"
        )
    assert _stored(engine) == [("shop", ["profile"], ["profile.email"], "read", False)]
    two = [
        accesses.access_row(
            Reader(**{**READER.__dict__, "vendor_id": v}), ["history"], ["history"], action="write"
        )
        for v in ("v1", "v2")
    ]
    with engine.begin() as conn:
        accesses.add_accesses(conn, two, via="deposit")
    assert _stored(engine) == [
        ("shop", ["profile"], ["profile.email"], "read", False),
        ("v1", ["history"], ["history"], "write", False),
        ("v2", ["history"], ["history"], "write", False),
    ]
    # Through a session, in its transaction: stored once it commits.
    with Session(engine) as session:
        accesses.add_accesses(
            session.connection(), [accesses.access_row(READER, ["preferences"], [])], via="data"
        )
        # A 304 records that the vendor learned nothing had changed.
        row = accesses.access_row(READER, ["history"], [], action="write", not_modified=True)
        accesses.add_accesses(session.connection(), [row], via="data")
        session.commit()
    assert _stored(engine)[:3] == [
        ("shop", ["history"], [], "write", True),
        ("shop", ["preferences"], [], "read", False),
        ("shop", ["profile"], ["profile.email"], "read", False),
    ]
