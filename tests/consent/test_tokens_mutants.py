"""What consent/oauth/tokens.py decides, one rule at a time, without a
server: whether a token is usable at a given instant, what it may do under
its grant, how its row is found, and which rows the purge may delete.
Each test pins a rule a surviving mutant showed nothing held in place
(``make mutate``, docs/testing.md)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, insert, select

from consent.grants.models import Grant
from consent.oauth import bearer, store, tokens
from consent.oauth.store import TokenRow
from consent.oauth.tokens import ActiveToken, Found
from consent.policy import parse_scope
from consent.vendors.models import Vendor
from vrm.crypto.keystore import FileKeyStore
from vrm.keys.service import Vault

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
TOKEN_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "utcnow", lambda: NOW)


def _row(**changes: Any) -> TokenRow:
    row = TokenRow(
        id=TOKEN_ID,
        access_hash=b"a" * 32,
        refresh_hash=b"r" * 32,
        legacy=None,
        family_id="family",
        vendor_id="shop",
        grant_id="grant",
        customer_id="ana",
        scope="openid profile.email:read",
        issued_at=NOW - timedelta(minutes=5),
        expires_at=NOW + timedelta(hours=1),
        refresh_expires_at=NOW + timedelta(days=30),
        refreshed_at=None,
        revoked_at=None,
        refresh_scope=None,
    )
    return row._replace(**changes)


def _vendor(disabled_at: datetime | None = None) -> Vendor:
    return Vendor(id="shop", name="Shop", created_at=NOW, disabled_at=disabled_at)


def _grant(
    scopes: list[str] | None = None,
    *,
    openid: bool = True,
    expires_at: datetime = NOW + timedelta(days=365),
    revoked_at: datetime | None = None,
) -> Grant:
    return Grant(
        id="grant",
        customer_id="ana",
        vendor_id="shop",
        scopes=["profile:read", "history:read"] if scopes is None else scopes,
        openid=openid,
        purpose="dpv:ServiceProvision",
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
        expires_at=expires_at,
        revoked_at=revoked_at,
    )


def _found(row: TokenRow, kind: str = "access_token", **kw: object) -> Found:
    vendor = kw.get("vendor", _vendor())
    grant = kw["grant"] if "grant" in kw else _grant()
    assert isinstance(vendor, Vendor)
    assert grant is None or isinstance(grant, Grant)
    return Found(row, vendor, grant, kind)


# -- when a token is usable -------------------------------------------------


def test_an_access_token_is_usable_until_the_instant_it_expires() -> None:
    row = _row(expires_at=NOW + US)
    found = _found(row)
    assert found.usable() == ActiveToken(
        token=row,
        vendor=found.vendor,
        grant=found.grant,
        accesses=[parse_scope("profile.email:read")],
        openid=True,
        vendor_scopes=(),
        scope="openid profile.email:read",
    )
    assert _found(_row(expires_at=NOW)).usable() is None  # RFC 6749 5.1 expires_in


def test_an_access_token_lives_by_its_own_expiry_not_its_refresh_tokens() -> None:
    row = _row(expires_at=NOW - US, refresh_expires_at=NOW + timedelta(days=1))
    assert _found(row).usable() is None
    # The same row as a refresh token is still good.
    assert _found(row, "refresh_token").usable() is not None


def test_a_refresh_token_is_usable_until_its_own_expiry() -> None:
    row = _row(expires_at=NOW - timedelta(hours=1), refresh_expires_at=NOW + US)
    active = _found(row, "refresh_token").usable()
    assert active is not None
    assert active.scope == "openid profile.email:read"
    assert _found(row._replace(refresh_expires_at=NOW), "refresh_token").usable() is None
    # A row issued without a refresh token has none to use.
    assert _found(row._replace(refresh_expires_at=None), "refresh_token").usable() is None


def test_a_refresh_token_used_once_is_spent_however_long_it_had() -> None:
    row = _row(refreshed_at=NOW - timedelta(minutes=1))
    assert _found(row, "refresh_token").usable() is None
    # Refreshing spends the refresh token only: the access token lives on.
    assert _found(row).usable() is not None


def test_a_refresh_token_carries_its_wider_scope_and_its_access_token_does_not() -> None:
    # The access token was narrowed at refresh (RFC 6749 6): the refresh
    # token keeps the scope it was issued with.
    row = _row(scope="profile.email:read", refresh_scope="openid profile:read")
    refresh = _found(row, "refresh_token").usable()
    access = _found(row).usable()
    assert refresh is not None
    assert access is not None
    assert refresh.scope == "openid profile:read"
    assert refresh.accesses == [parse_scope("profile:read")]
    assert refresh.openid is True
    assert access.scope == "profile.email:read"
    assert access.openid is False


def test_a_revoked_token_or_a_disabled_vendor_stops_every_use() -> None:
    revoked = _row(revoked_at=NOW - timedelta(seconds=1))
    disabled = _vendor(disabled_at=NOW - timedelta(seconds=1))
    for kind in ("access_token", "refresh_token"):
        assert _found(revoked, kind).usable() is None
        assert _found(_row(), kind, vendor=disabled).usable() is None
        assert _found(_row(), kind).usable() is not None


def test_a_token_whose_grant_is_gone_does_nothing() -> None:
    # The grant row was deleted (its customer erased): the token named it.
    assert _found(_row(), grant=None).usable() is None


def test_a_revoked_or_expired_grant_stops_its_tokens() -> None:
    assert _found(_row(), grant=_grant(revoked_at=NOW - US)).usable() is None
    assert _found(_row(), grant=_grant(expires_at=NOW)).usable() is None
    assert _found(_row(), grant=_grant(expires_at=NOW + US)).usable() is not None


def test_a_client_credentials_token_holds_vendor_scopes_and_no_customer_data() -> None:
    row = _row(grant_id=None, customer_id=None, scope="feed:read profile:read openid")
    found = _found(row, grant=None)
    assert found.usable() == ActiveToken(
        token=row,
        vendor=found.vendor,
        grant=None,
        accesses=[],
        openid=False,
        vendor_scopes=("feed:read",),
        scope="feed:read",
    )
    bare = _found(row._replace(scope="profile:read"), grant=None).usable()
    assert bare is not None
    assert (bare.vendor_scopes, bare.scope) == ((), "")


def test_a_narrowed_grant_narrows_the_token_at_once() -> None:
    row = _row(scope="openid profile:read history:read")
    found = _found(row, grant=_grant(["profile.email:read", "preferences:read"], openid=False))
    assert found.usable() == ActiveToken(
        token=row,
        vendor=found.vendor,
        grant=found.grant,
        accesses=[parse_scope("profile.email:read")],
        openid=False,
        vendor_scopes=(),
        scope="profile.email:read",
    )


def test_openid_needs_both_the_token_and_the_grant() -> None:
    no_openid = _found(_row(scope="profile:read"), grant=_grant(openid=True)).usable()
    assert no_openid is not None
    assert (no_openid.openid, no_openid.scope) == (False, "profile:read")
    both = _found(_row(scope="openid profile:read")).usable()
    assert both is not None
    assert (both.openid, both.scope) == (True, "openid profile:read")


# -- how a token names its row ----------------------------------------------


def test_a_token_carries_its_rows_id_after_its_prefix() -> None:
    access = tokens.new_access_token(TOKEN_ID)
    refresh = tokens.new_refresh_token(TOKEN_ID)
    assert access.startswith("vat_" + TOKEN_ID)
    assert refresh.startswith("vrt_" + TOKEN_ID)
    assert len(access) == len(refresh) == 4 + 32 + 43
    assert tokens.id_of(access) == TOKEN_ID
    assert tokens.id_of(refresh) == TOKEN_ID
    # Fresh randomness each time.
    assert tokens.new_access_token(TOKEN_ID) != access


def test_a_token_of_another_form_carries_no_id() -> None:
    legacy = "vat_" + "A" * 43  # before migration 0006: prefix and secret
    assert tokens.id_of(legacy) is None
    good = "vat_" + TOKEN_ID + "B" * 43
    assert tokens.id_of(good) == TOKEN_ID
    assert tokens.id_of(good + "B") is None
    assert tokens.id_of(good[:-1]) is None
    # Only lowercase hex is an id; anything else is looked up by hash.
    assert tokens.id_of("vat_" + TOKEN_ID.upper() + "B" * 43) is None
    assert tokens.id_of("vat_" + "g" + TOKEN_ID[1:] + "B" * 43) is None
    assert tokens.id_of("vat_" + TOKEN_ID[:-1] + "-" + "B" * 43) is None


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer    ", None),
        ("Basic abc", None),
        ("Bearerabc", None),
        ("", None),
    ],
)
def test_the_bearer_token_of_an_authorization_header(header: str, token: str | None) -> None:
    # RFC 6750 2.1: the scheme is case-insensitive (RFC 9110 11.1).
    assert bearer.token_of({"authorization": header}) == token


# -- the purge: which rows no token of could be used ------------------------


@pytest.fixture
def token_table() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    store.TOKEN.create(engine)
    yield engine
    engine.dispose()


def test_spent_rows_are_those_revoked_or_with_both_tokens_expired_before(
    token_table: Engine,
) -> None:
    hour = timedelta(hours=1)
    rows = {
        "live": _row(),
        "revoked_before": _row(revoked_at=NOW - US),
        "revoked_at_before": _row(revoked_at=NOW),
        "revoked_after": _row(revoked_at=NOW + US),
        "both_expired": _row(expires_at=NOW - hour, refresh_expires_at=NOW - US),
        "refresh_expires_at_before": _row(expires_at=NOW - hour, refresh_expires_at=NOW),
        "access_expires_at_before": _row(expires_at=NOW, refresh_expires_at=None),
        "no_refresh_expired": _row(expires_at=NOW - US, refresh_expires_at=None),
        "refresh_alive": _row(expires_at=NOW - hour, refresh_expires_at=NOW + hour),
        "access_alive": _row(expires_at=NOW + US, refresh_expires_at=NOW - hour),
    }
    with token_table.begin() as conn:
        for name, row in rows.items():
            conn.execute(insert(store.TOKEN).values(**row._replace(id=name)._asdict()))
        spent = conn.execute(
            select(store.TOKEN.c.id).where(tokens.spent(NOW)).order_by(store.TOKEN.c.id)
        ).scalars()
        assert list(spent) == ["both_expired", "no_refresh_expired", "revoked_before"]


# -- finding a token's row --------------------------------------------------


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Vault:
    keystore = FileKeyStore(Path(tmp_path_factory.mktemp("keys")))
    keystore.create_server_key("token-hash")
    return Vault(keystore, cache_seconds=0)


class _Store:
    """The store's token lookups, answering from one row and recording how
    they were asked."""

    def __init__(self, row: TokenRow) -> None:
        self.row = row
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self.vendor, self.grant = _vendor(), _grant()

    def token(self, conn: object, **key: Any) -> tuple[TokenRow, Vendor, Grant] | None:
        self.asked.append(("token", key))
        return self._match(key)

    def refresh_token_of(
        self, conn: object, vendor: Vendor, **key: Any
    ) -> tuple[TokenRow, Vendor, Grant] | None:
        self.asked.append((f"refresh_token_of {vendor.id}", key))
        return self._match(key)

    def _match(self, key: dict[str, Any]) -> tuple[TokenRow, Vendor, Grant] | None:
        ((column, value),) = key.items()
        stored = self.row.id if column == "token_id" else getattr(self.row, column)
        return (self.row, self.vendor, self.grant) if value == stored else None


def _issued(vault: Vault, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, _Store]:
    access = tokens.new_access_token(TOKEN_ID)
    refresh = tokens.new_refresh_token(TOKEN_ID)
    fake = _Store(
        _row(access_hash=vault.token_hash(access), refresh_hash=vault.token_hash(refresh))
    )
    monkeypatch.setattr(store, "token", fake.token)
    monkeypatch.setattr(store, "refresh_token_of", fake.refresh_token_of)
    return access, refresh, fake


def test_each_token_is_found_by_its_id_and_checked_against_its_own_hash(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    access, refresh, fake = _issued(vault, monkeypatch)
    found = (fake.row, fake.vendor, fake.grant)
    assert tokens.find_access(None, vault, access) == Found(*found, "access_token")  # type: ignore[arg-type]
    assert tokens.find_refresh(None, vault, refresh) == Found(*found, "refresh_token")  # type: ignore[arg-type]
    assert tokens.find_any(None, vault, access) == Found(*found, "access_token")  # type: ignore[arg-type]
    assert tokens.find_any(None, vault, refresh) == Found(*found, "refresh_token")  # type: ignore[arg-type]
    assert tokens.find_refresh(None, vault, refresh, fake.vendor) == Found(  # type: ignore[arg-type]
        *found, "refresh_token"
    )
    assert fake.asked == [
        ("token", {"token_id": TOKEN_ID}),
        ("token", {"token_id": TOKEN_ID}),
        ("token", {"token_id": TOKEN_ID}),
        ("token", {"token_id": TOKEN_ID}),
        ("refresh_token_of shop", {"token_id": TOKEN_ID}),
    ]
    active = tokens.check_access_token(None, vault, access)  # type: ignore[arg-type]
    assert active is not None
    assert active.scope == "openid profile.email:read"


def test_an_id_with_the_wrong_secret_or_the_other_kinds_prefix_finds_nothing(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    access, refresh, fake = _issued(vault, monkeypatch)
    forged = access[:-1] + ("A" if access[-1] != "A" else "B")
    swapped_access = "vat_" + refresh[4:]  # the refresh secret as an access token
    swapped_refresh = "vrt_" + access[4:]
    for token in (forged, swapped_access):
        assert tokens.find_access(None, vault, token) is None  # type: ignore[arg-type]
        assert tokens.check_access_token(None, vault, token) is None  # type: ignore[arg-type]
    assert tokens.find_refresh(None, vault, swapped_refresh) is None  # type: ignore[arg-type]
    # A prefix decides which kind is looked up; nothing else is tried.
    assert tokens.find_access(None, vault, refresh) is None  # type: ignore[arg-type]
    assert tokens.find_refresh(None, vault, access) is None  # type: ignore[arg-type]
    assert tokens.find_any(None, vault, "xyz_" + access[4:]) is None  # type: ignore[arg-type]
    fake.asked.clear()
    assert tokens.find_refresh(None, vault, access) is None  # type: ignore[arg-type]
    assert fake.asked == []


def test_a_row_without_a_refresh_hash_has_no_refresh_token(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, refresh, fake = _issued(vault, monkeypatch)
    fake.row = fake.row._replace(refresh_hash=None)
    assert tokens.find_refresh(None, vault, refresh) is None  # type: ignore[arg-type]


def test_a_token_issued_before_ids_is_found_by_its_hash(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    access, refresh = "vat_" + "A" * 43, "vrt_" + "B" * 43
    fake = _Store(
        _row(access_hash=vault.token_hash(access), refresh_hash=vault.token_hash(refresh))
    )
    monkeypatch.setattr(store, "token", fake.token)
    monkeypatch.setattr(store, "refresh_token_of", fake.refresh_token_of)
    found = (fake.row, fake.vendor, fake.grant)
    assert tokens.find_access(None, vault, access) == Found(*found, "access_token")  # type: ignore[arg-type]
    assert tokens.find_refresh(None, vault, refresh, fake.vendor) == Found(  # type: ignore[arg-type]
        *found, "refresh_token"
    )
    assert fake.asked == [
        ("token", {"access_hash": vault.token_hash(access)}),
        ("refresh_token_of shop", {"refresh_hash": vault.token_hash(refresh)}),
    ]
