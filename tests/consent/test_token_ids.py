"""Tokens carry the id of their row (consent/oauth/tokens.py): the row is
found by its primary key and the token's keyed hash checked after, so an id
alone opens nothing. Tokens issued before migration 0006 carry no id and are
still found by their hash."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import Session, select

from consent.oauth import tokens
from consent.oauth.models import OAuthToken
from tests.conftest import Person
from tests.consent.conftest import Vendor, register_vendor, tokens_for
from tests.kit import bearer

HEX = set("0123456789abcdef")


def _row(app: FastAPI, token_id: str) -> OAuthToken:
    with Session(app.state.engine) as session:
        row = session.get(OAuthToken, token_id)
        assert row is not None
        return row


def _read(vendor: Vendor, access_token: str) -> Any:
    return vendor.client.get("/v1/data", headers=bearer(access_token))


def test_both_tokens_carry_their_rows_id_and_are_stored_as_hashes(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor)
    access, refresh = t["access_token"], t["refresh_token"]
    assert access.startswith("vat_")
    assert refresh.startswith("vrt_")
    assert len(access) == len(refresh) == 4 + 32 + 43
    token_id = access[4:36]
    assert set(token_id) <= HEX
    assert refresh[4:36] == token_id
    assert access[36:] != refresh[36:]
    row = _row(app, token_id)
    assert row.legacy is None
    assert row.access_hash == app.state.vault.token_hash(access)
    assert row.refresh_hash == app.state.vault.token_hash(refresh)
    cc = vendor.token(grant_type="client_credentials", scope="feed:read").json()
    assert tokens.id_of(cc["access_token"]) is not None
    assert tokens.id_of(cc["access_token"]) != token_id


def _forged(token: str) -> list[str]:
    """The token's id with other secrets: random, one character changed,
    the other kind's prefix."""
    body = token[36:]
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    other = ("vrt_" if token.startswith("vat_") else "vat_") + token[4:]
    return [token[:36] + secrets.token_urlsafe(32), token[:36] + flipped, other]


def test_an_id_with_any_other_secret_opens_nothing(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor, "profile:read")
    for forged in _forged(t["access_token"]):
        assert _read(vendor, forged).status_code == 401, forged
        assert vendor.introspect(forged) == {"active": False}
    for forged in _forged(t["refresh_token"]):
        r = vendor.refresh(forged)
        assert r.status_code == 400, forged
        assert r.json()["error"] == "invalid_grant"
    # None of that touched the real tokens: a forged refresh is no replay.
    assert _read(vendor, t["access_token"]).status_code == 200
    assert vendor.refresh(t["refresh_token"]).status_code == 200


def test_another_vendors_token_id_is_not_this_vendors(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    other = register_vendor(app, "Other Shop")
    t = tokens_for(ana, other)
    r = vendor.refresh(t["refresh_token"])
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant"
    assert vendor.introspect(t["access_token"]) == {"active": False}
    assert other.refresh(t["refresh_token"]).status_code == 200


def _make_legacy(app: FastAPI, token_id: str) -> tuple[str, str]:
    """The row as migration 0006 leaves one issued before it: its tokens
    were the prefix and 43 random characters, and it is marked legacy."""
    access = "vat_" + secrets.token_urlsafe(32)
    refresh = "vrt_" + secrets.token_urlsafe(32)
    vault = app.state.vault
    with Session(app.state.engine) as session:
        session.exec(
            update(OAuthToken)
            .where(OAuthToken.id == token_id)  # type: ignore[arg-type]
            .values(
                access_hash=vault.token_hash(access),
                refresh_hash=vault.token_hash(refresh),
                legacy=True,
            )
        )
        session.commit()
    return access, refresh


def test_tokens_issued_before_ids_still_work_and_rotate_into_the_new_form(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    t = tokens_for(ana, vendor, "profile:read")
    access, refresh = _make_legacy(app, t["access_token"][4:36])
    assert tokens.id_of(access) is None
    assert _read(vendor, t["access_token"]).status_code == 401  # its hash is gone
    assert _read(vendor, access).status_code == 200
    assert vendor.introspect(access)["active"] is True
    assert vendor.introspect(refresh)["active"] is True
    r = vendor.refresh(refresh)
    assert r.status_code == 200, r.text
    new = r.json()
    assert tokens.id_of(new["access_token"]) is not None
    assert _read(vendor, new["access_token"]).status_code == 200
    # A replay of the legacy refresh token kills the family, new tokens too.
    assert vendor.refresh(refresh).status_code == 400
    assert _read(vendor, new["access_token"]).status_code == 401
    assert vendor.introspect(new["refresh_token"]) == {"active": False}


def test_a_legacy_token_of_another_vendor_is_not_this_vendors(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    other = register_vendor(app, "Other Shop")
    t = tokens_for(ana, other)
    access, refresh = _make_legacy(app, t["access_token"][4:36])
    assert vendor.refresh(refresh).status_code == 400
    assert vendor.introspect(access) == {"active": False}
    assert other.refresh(refresh).status_code == 200


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_new_rows_stay_out_of_the_hash_indexes(
    app: FastAPI, ana: Person, vendor: Vendor, kind: str
) -> None:
    """A token of the new form is not found by its hash alone, so a row
    issued after 0006 is never looked up the old way."""
    t = tokens_for(ana, vendor)
    vault = app.state.vault
    with Session(app.state.engine) as session:
        conn = session.connection()
        if kind == "access_token":
            assert tokens.store.token(conn, access_hash=vault.token_hash(t[kind])) is None
        else:
            assert tokens.store.token(conn, refresh_hash=vault.token_hash(t[kind])) is None
        assert tokens.store.token(conn, token_id=t[kind][4:36]) is not None
        legacy = session.exec(select(OAuthToken).where(OAuthToken.legacy == True)).all()  # noqa: E712
    assert legacy == []


def test_a_replay_kills_its_family_and_not_the_grants_other_families(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    """Families are found under their grant (ix_oauth_token_grant_family):
    two authorizations covered by one grant are two families."""
    first = tokens_for(ana, vendor, "profile:read")
    second = tokens_for(ana, vendor, "profile:read")  # the grant covers it: no page
    assert first["grant_id"] == second["grant_id"]
    used = vendor.refresh(first["refresh_token"])
    assert used.status_code == 200
    assert vendor.refresh(first["refresh_token"]).status_code == 400  # a replay
    assert vendor.introspect(used.json()["access_token"]) == {"active": False}
    assert _read(vendor, second["access_token"]).status_code == 200
    assert vendor.refresh(second["refresh_token"]).status_code == 200


def test_a_client_credentials_token_is_a_family_of_one(app: FastAPI, vendor: Vendor) -> None:
    one = vendor.token(grant_type="client_credentials", scope="feed:read").json()
    other = vendor.token(grant_type="client_credentials", scope="feed:read").json()
    row = _row(app, one["access_token"][4:36])
    assert row.grant_id is None
    with Session(app.state.engine) as session:
        tokens.revoke_family(
            session.connection(),
            vendor_id=row.vendor_id,
            customer_id=None,
            grant_id=None,
            family_id=row.family_id,
            reason="vendor",
        )
        session.commit()
    assert vendor.introspect(one["access_token"]) == {"active": False}
    assert vendor.introspect(other["access_token"])["active"] is True


def test_a_token_row_as_the_endpoints_read_it_is_the_stored_row(
    app: FastAPI, ana: Person, vendor: Vendor
) -> None:
    # The token endpoints read rows as named tuples (store.TokenRow), column
    # by column in the table's order: every value must land on its name.
    t = tokens_for(ana, vendor)
    with Session(app.state.engine) as session:
        found = tokens.find_refresh(session.connection(), app.state.vault, t["refresh_token"])
        assert found is not None
        stored = session.get(OAuthToken, found.row.id)
        assert stored is not None
        assert found.row._asdict() == stored.model_dump()
        assert found.row.issued_at < found.row.expires_at < found.row.refresh_expires_at
