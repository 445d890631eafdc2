"""The authorization server's reads and writes, in SQLAlchemy Core.

The token, revocation and introspection endpoints run for every vendor call,
and the ORM's unit of work, identity map and per-statement compilation were
most of their cost, and then SQLAlchemy's per-execution work. Here every
statement is built once, at import, with bound parameters, compiled once per
dialect, and run on the driver's cursor inside the transaction of the
:class:`~sqlalchemy.Connection` given (vrm/dbapi.py). Column types still
apply: UTC datetimes and JSON come back as the ORM would give them.

Rows are handed on as instances of the table models (:func:`loaded`), so
the rest of the code sees the same ``Vendor``, ``OAuthToken`` and ``Grant``
as everywhere else; those instances belong to no session and are only read.
Changes go through the statements here, never through ``session.add``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import configure_mappers, instrumentation
from sqlalchemy.orm.instrumentation import ClassManager
from sqlmodel import SQLModel

from consent.grants.models import Grant
from consent.oauth.models import AuthorizationCode, ClientAssertion, OAuthToken
from consent.vendors.models import Vendor
from vrm.accounts.models import Customer
from vrm.dbapi import Statement

M = TypeVar("M", bound=SQLModel)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)  # noqa: S101 - every table model has one
    return table


VENDOR = _table(Vendor)
TOKEN = _table(OAuthToken)
GRANT = _table(Grant)
CODE = _table(AuthorizationCode)
ASSERTION = _table(ClientAssertion)
CUSTOMER = _table(Customer)

# A token with its vendor and (left join: client credentials have none) its
# grant in one query; grant columns are labelled ``g_<name>``.
_TOKEN_FULL = (
    select(
        TOKEN,
        *(c.label("v_" + c.name) for c in VENDOR.c),
        *(c.label("g_" + c.name) for c in GRANT.c),
    )
    .select_from(TOKEN.join(VENDOR, TOKEN.c.vendor_id == VENDOR.c.id))
    .outerjoin(GRANT, TOKEN.c.grant_id == GRANT.c.id)
)
# On the driver's cursor (vrm/dbapi.py): every vendor call reads a token.
# By the row id the token carries; tokens issued before migration 0006 by
# their hash (only those rows are in the indexes on the hashes).
_LEGACY = TOKEN.c.legacy.is_not(None)
_TOKEN_BY_ID = Statement(_TOKEN_FULL.where(TOKEN.c.id == bindparam("id")))
_LEGACY_BY_ACCESS = Statement(_TOKEN_FULL.where(TOKEN.c.access_hash == bindparam("h"), _LEGACY))
_LEGACY_BY_REFRESH = Statement(_TOKEN_FULL.where(TOKEN.c.refresh_hash == bindparam("h"), _LEGACY))
# A refresh token of a vendor the token endpoint has already read (and
# authenticated): the token and its grant only, in the same column layout.
_REFRESH_OF_VENDOR_SELECT = (
    select(TOKEN, *(c.label("g_" + c.name) for c in GRANT.c))
    .select_from(TOKEN.outerjoin(GRANT, TOKEN.c.grant_id == GRANT.c.id))
    .where(TOKEN.c.vendor_id == bindparam("vendor_id"))
)
_REFRESH_OF_VENDOR = Statement(_REFRESH_OF_VENDOR_SELECT.where(TOKEN.c.id == bindparam("id")))
_LEGACY_REFRESH_OF_VENDOR = Statement(
    _REFRESH_OF_VENDOR_SELECT.where(TOKEN.c.refresh_hash == bindparam("h"), _LEGACY)
)
# Where each table's columns start in a row of _TOKEN_FULL, and their names.
_TOKEN_NAMES = tuple(c.name for c in TOKEN.c)
_VENDOR_NAMES = tuple(c.name for c in VENDOR.c)
_GRANT_NAMES = tuple(c.name for c in GRANT.c)
_VENDOR_AT = len(_TOKEN_NAMES)
_GRANT_AT = _VENDOR_AT + len(_VENDOR_NAMES)
_VENDOR_BY_ID = Statement(select(VENDOR).where(VENDOR.c.id == bindparam("id")))
_GRANT_BY_ID = Statement(select(GRANT).where(GRANT.c.id == bindparam("id")))
_CUSTOMER_BY_ID = Statement(select(CUSTOMER).where(CUSTOMER.c.id == bindparam("id")))
_CODE_BY_HASH = Statement(select(CODE).where(CODE.c.code_hash == bindparam("h")))
_INSERT_TOKEN = Statement(insert(TOKEN))
_CONSUME_REFRESH = Statement(
    update(TOKEN)
    .where(
        TOKEN.c.id == bindparam("token_id"),
        TOKEN.c.refreshed_at.is_(None),
        TOKEN.c.revoked_at.is_(None),
    )
    .values(refreshed_at=bindparam("now"))
)
_REVOKE_TOKEN = Statement(
    update(TOKEN)
    .where(TOKEN.c.id == bindparam("token_id"), TOKEN.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("now"))
)
_REVOKE_FAMILY = Statement(
    update(TOKEN)
    .where(
        TOKEN.c.grant_id == bindparam("grant"),
        TOKEN.c.family_id == bindparam("family"),
        TOKEN.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("now"))
)
_CONSUME_CODE = Statement(
    update(CODE)
    .where(CODE.c.code_hash == bindparam("h"), CODE.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_INSERT_ASSERTION = Statement(insert(ASSERTION))
_PURGE_ASSERTIONS = Statement(delete(ASSERTION).where(ASSERTION.c.expires_at < bindparam("now")))


@cache
def _manager(model: type[SQLModel]) -> ClassManager[Any]:
    # A worker process whose first request is a token request has not used
    # the ORM yet, and attributes of unconfigured mappers cannot be read.
    configure_mappers()
    return instrumentation.manager_of_class(model)


def loaded(model: type[M], row: Mapping[Any, Any]) -> M:
    """An instance of ``model`` holding ``row``, as a query through a
    session would return it but outside any session (so read only).
    Skips model validation: the row came from the table."""
    obj: M = _manager(model).new_instance()
    obj.__dict__.update(row)
    object.__setattr__(obj, "__pydantic_fields_set__", set(row))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


# -- vendors, customers, grants --------------------------------------------


# Vendors as last read, by their row exactly as the database returned it.
_VENDORS: dict[tuple[Any, ...], Vendor] = {}
_VENDORS_KEPT = 1024


def vendor(conn: Connection, vendor_id: str) -> Vendor | None:
    """The vendor, read on every call: a changed secret, a disabled vendor
    or new redirect URIs count at once. Only the decoding of its row (JSON
    lists and a datetime, about half the cost of the lookup) is skipped
    when the row is exactly as it was the last time; the instance is then
    the same one, and nothing changes a loaded vendor. (SQLite only: on
    PostgreSQL the driver has decoded the JSON already.)"""
    raw = _VENDOR_BY_ID.first_raw(conn, {"id": vendor_id})
    if raw is None:
        return None
    try:
        found = _VENDORS.get(raw)
    except TypeError:  # psycopg hands JSON columns back decoded, as lists
        return loaded(Vendor, _VENDOR_BY_ID.processed(conn, raw))
    if found is None:
        if len(_VENDORS) >= _VENDORS_KEPT:
            _VENDORS.clear()
        found = _VENDORS[raw] = loaded(Vendor, _VENDOR_BY_ID.processed(conn, raw))
    return found


def customer(conn: Connection, customer_id: str) -> Customer | None:
    row = _CUSTOMER_BY_ID.mapping(conn, {"id": customer_id})
    return loaded(Customer, row) if row is not None else None


def grant(conn: Connection, grant_id: str) -> Grant | None:
    row = _GRANT_BY_ID.mapping(conn, {"id": grant_id})
    return loaded(Grant, row) if row is not None else None


# -- tokens -----------------------------------------------------------------


def token(
    conn: Connection,
    *,
    token_id: str | None = None,
    access_hash: bytes | None = None,
    refresh_hash: bytes | None = None,
) -> tuple[OAuthToken, Vendor, Grant | None] | None:
    """The token row with this id, or the legacy row (issued before
    migration 0006) with this access or refresh token hash; with its vendor
    and its grant (None for a client-credentials token), in one query. The
    caller checks the hash of a row found by id."""
    if token_id is not None:
        row = _TOKEN_BY_ID.first(conn, {"id": token_id})
    elif access_hash is not None:
        row = _LEGACY_BY_ACCESS.first(conn, {"h": access_hash})
    else:
        row = _LEGACY_BY_REFRESH.first(conn, {"h": refresh_hash})
    if row is None:
        return None
    vendor = loaded(Vendor, dict(zip(_VENDOR_NAMES, row[_VENDOR_AT:_GRANT_AT], strict=True)))
    return _token_and_grant(row, row[_GRANT_AT:], vendor)


def refresh_token_of(
    conn: Connection,
    vendor: Vendor,
    *,
    token_id: str | None = None,
    refresh_hash: bytes | None = None,
) -> tuple[OAuthToken, Vendor, Grant | None] | None:
    """As :func:`token` for a refresh token, if it is ``vendor``'s: the
    vendor is not read again."""
    if token_id is not None:
        row = _REFRESH_OF_VENDOR.first(conn, {"id": token_id, "vendor_id": vendor.id})
    else:
        row = _LEGACY_REFRESH_OF_VENDOR.first(conn, {"h": refresh_hash, "vendor_id": vendor.id})
    if row is None:
        return None
    return _token_and_grant(row, row[_VENDOR_AT:], vendor)


def _token_and_grant(
    row: Sequence[Any], grant_columns: Sequence[Any], vendor: Vendor
) -> tuple[OAuthToken, Vendor, Grant | None]:
    grant_fields = dict(zip(_GRANT_NAMES, grant_columns, strict=True))
    return (
        loaded(OAuthToken, dict(zip(_TOKEN_NAMES, row[:_VENDOR_AT], strict=True))),
        vendor,
        loaded(Grant, grant_fields) if grant_fields["id"] is not None else None,
    )


def insert_token(conn: Connection, **values: Any) -> None:
    _INSERT_TOKEN.execute(
        conn, {"refreshed_at": None, "revoked_at": None, "legacy": None, **values}
    )


def consume_refresh(conn: Connection, token_id: str, now: datetime) -> bool:
    """Mark the refresh token used, atomically: True for the first use only."""
    return _CONSUME_REFRESH.execute(conn, {"token_id": token_id, "now": now}) == 1


def revoke_token(conn: Connection, token_id: str, now: datetime) -> None:
    _REVOKE_TOKEN.execute(conn, {"token_id": token_id, "now": now})


def revoke_family(conn: Connection, grant_id: str | None, family_id: str, now: datetime) -> None:
    """Every token of the family, found under its grant. A token without a
    grant (client credentials) is a family of one, whose id is the row's."""
    if grant_id is None:
        revoke_token(conn, family_id, now)
    else:
        _REVOKE_FAMILY.execute(conn, {"grant": grant_id, "family": family_id, "now": now})


# -- authorization codes and client assertions -------------------------------


def code(conn: Connection, code_hash: bytes) -> AuthorizationCode | None:
    row = _CODE_BY_HASH.mapping(conn, {"h": code_hash})
    return loaded(AuthorizationCode, row) if row is not None else None


def consume_code(conn: Connection, code_hash: bytes, now: datetime) -> bool:
    """Mark the code used, atomically: True for the first exchange only."""
    return _CONSUME_CODE.execute(conn, {"h": code_hash, "now": now}) == 1


def purge_assertions(conn: Connection, now: datetime) -> None:
    _PURGE_ASSERTIONS.execute(conn, {"now": now})


def insert_assertion(conn: Connection, **values: Any) -> None:
    _INSERT_ASSERTION.execute(conn, values)
