"""The authorization server's tokens, codes and client assertions, in
SQLAlchemy Core (the vendor, grant and customer rows they refer to are read
in consent/oauth/rows.py).

The token, revocation and introspection endpoints run for every vendor call,
and the ORM's unit of work, identity map and per-statement compilation were
most of their cost, and then SQLAlchemy's per-execution work. Here every
statement is built once, at import, with bound parameters, compiled once per
dialect, and run on the driver's cursor inside the transaction of the
:class:`~sqlalchemy.Connection` given (vrm/storage/statements.py). Column types still
apply: UTC datetimes and JSON come back as the ORM would give them.

A token row, read once per vendor call and never shared, is a
:class:`TokenRow`, a named tuple of the same columns: a model instance cost
more to make than the rest of its decoding. Changes go through the
statements here, never through ``session.add``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from consent.audit import log as audit_log
from consent.grants.models import Grant
from consent.oauth.models import (
    AuthorizationCode,
    ClientAssertion,
    DeviceAuthorization,
    OAuthToken,
)
from consent.oauth.rows import GRANT, GRANTS, VENDOR, VENDORS, loaded, table_of
from consent.vendors.models import Vendor
from vrm.storage.statements import Statement


class TokenRow(NamedTuple):
    """A row of ``oauth_token`` (consent.oauth.models.OAuthToken), its
    columns in the table's order, as read."""

    id: str
    access_hash: bytes
    refresh_hash: bytes | None
    legacy: bool | None
    family_id: str
    vendor_id: str
    grant_id: str | None
    customer_id: str | None
    scope: str
    issued_at: datetime
    expires_at: datetime
    refresh_expires_at: datetime | None
    refreshed_at: datetime | None
    revoked_at: datetime | None
    refresh_scope: str | None
    root_by_access: bytes | None = None
    root_by_refresh: bytes | None = None


TOKEN = table_of(OAuthToken)
CODE = table_of(AuthorizationCode)
ASSERTION = table_of(ClientAssertion)
DEVICE = table_of(DeviceAuthorization)
# What the token, revocation and introspection endpoints write, in a group
# commit (vrm/storage/groupcommit.py): never a vendor, grant or customer,
# whose rows a group may read once for all its requests.
# Their entries on the audit log too (consent/audit/log.py).
ENDPOINT_WRITES = frozenset({TOKEN, CODE, ASSERTION, DEVICE}) | audit_log.WRITES

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
# On the driver's cursor (vrm/storage/statements.py): every vendor call reads a token.
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
_CODE_BY_HASH = Statement(select(CODE).where(CODE.c.code_hash == bindparam("h")))
# A new token: every column but those a new row leaves NULL (refreshed_at,
# revoked_at, legacy), which the table defaults.
_INSERTED = (
    "id",
    "access_hash",
    "refresh_hash",
    "family_id",
    "vendor_id",
    "grant_id",
    "customer_id",
    "scope",
    "issued_at",
    "expires_at",
    "refresh_expires_at",
    "refresh_scope",
    "root_by_access",
    "root_by_refresh",
)
_INSERT_TOKEN = Statement(insert(TOKEN).values({name: bindparam(name) for name in _INSERTED}))
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
# A family under no grant: the first-party client's tokens (a device
# login and its refreshes), or a client-credentials token, a family of one
# whose id is the row's.
_REVOKE_GRANTLESS_FAMILY = Statement(
    update(TOKEN)
    .where(
        TOKEN.c.grant_id.is_(None),
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


# -- tokens -----------------------------------------------------------------


def token(
    conn: Connection,
    *,
    token_id: str | None = None,
    access_hash: bytes | None = None,
    refresh_hash: bytes | None = None,
) -> tuple[TokenRow, Vendor, Grant | None] | None:
    """The token row with this id, or the legacy row (issued before
    migration 0006) with this access or refresh token hash; with its vendor
    and its grant (None for a client-credentials token), in one query. The
    caller checks the hash of a row found by id."""
    params: dict[str, Any]
    if token_id is not None:
        statement, params = _TOKEN_BY_ID, {"id": token_id}
    elif access_hash is not None:
        statement, params = _LEGACY_BY_ACCESS, {"h": access_hash}
    else:
        statement, params = _LEGACY_BY_REFRESH, {"h": refresh_hash}
    row = statement.first_raw(conn, params)
    if row is None:
        return None
    vendor_raw = row[_VENDOR_AT:_GRANT_AT]
    vendor = VENDORS.get(vendor_raw, lambda: statement.converted(conn, row, _VENDOR_AT, _GRANT_AT))
    return _token_and_grant(conn, statement, row, _GRANT_AT, vendor)


def refresh_token_of(
    conn: Connection,
    vendor: Vendor,
    *,
    token_id: str | None = None,
    refresh_hash: bytes | None = None,
) -> tuple[TokenRow, Vendor, Grant | None] | None:
    """As :func:`token` for a refresh token, if it is ``vendor``'s: the
    vendor is not read again."""
    params: dict[str, Any]
    if token_id is not None:
        statement, params = _REFRESH_OF_VENDOR, {"id": token_id, "vendor_id": vendor.id}
    else:
        statement = _LEGACY_REFRESH_OF_VENDOR
        params = {"h": refresh_hash, "vendor_id": vendor.id}
    row = statement.first_raw(conn, params)
    if row is None:
        return None
    return _token_and_grant(conn, statement, row, _VENDOR_AT, vendor)


def _token_and_grant(
    conn: Connection, statement: Statement, row: tuple[Any, ...], grant_at: int, vendor: Vendor
) -> tuple[TokenRow, Vendor, Grant | None]:
    """The token (the row's first columns) and its grant (the columns from
    ``grant_at``), decoded apart: the grant's are mostly unchanged since the
    last call."""
    token = statement.converted(conn, row, 0, _VENDOR_AT)
    grant_raw = row[grant_at:]
    grant: Grant | None = None
    if grant_raw[0] is not None:
        grant = GRANTS.get(grant_raw, lambda: statement.converted(conn, row, grant_at, len(row)))
    return TokenRow(*token), vendor, grant


def insert_token(conn: Connection, **values: Any) -> None:
    """A new token row: the values of every column in ``_INSERTED``."""
    _INSERT_TOKEN.execute(conn, values)


def consume_refresh(conn: Connection, token_id: str, now: datetime) -> bool:
    """Mark the refresh token used, atomically: True for the first use only."""
    return _CONSUME_REFRESH.execute(conn, {"token_id": token_id, "now": now}) == 1


def revoke_token(conn: Connection, token_id: str, now: datetime) -> None:
    _REVOKE_TOKEN.execute(conn, {"token_id": token_id, "now": now})


def revoke_family(conn: Connection, grant_id: str | None, family_id: str, now: datetime) -> None:
    """Every token of the family, found under its grant, or among the
    tokens of no grant (the first-party client's; a client-credentials
    token is a family of one, whose id is the row's)."""
    if grant_id is None:
        _REVOKE_GRANTLESS_FAMILY.execute(conn, {"family": family_id, "now": now})
    else:
        _REVOKE_FAMILY.execute(conn, {"grant": grant_id, "family": family_id, "now": now})


# -- authorization codes and client assertions -------------------------------


def code(conn: Connection, code_hash: bytes) -> AuthorizationCode | None:
    row = _CODE_BY_HASH.mapping(conn, {"h": code_hash})
    return loaded(AuthorizationCode, row) if row is not None else None


def insert_code(conn: Connection, **values: Any) -> None:
    """A new authorization code (the authorization pages: not a hot path)."""
    conn.execute(insert(CODE).values(**values))


def challenge_seen(conn: Connection, vendor_id: str, challenge: str) -> bool:
    """Whether a code of this vendor carried this PKCE challenge."""
    found = select(CODE.c.code_hash).where(
        CODE.c.vendor_id == vendor_id, CODE.c.code_challenge == challenge
    )
    return conn.execute(found.limit(1)).first() is not None


def nonce_seen(conn: Connection, vendor_id: str | None, nonce: str) -> bool:
    """Whether a code of this vendor carried this OIDC nonce."""
    found = select(CODE.c.code_hash).where(CODE.c.vendor_id == vendor_id, CODE.c.nonce == nonce)
    return conn.execute(found.limit(1)).first() is not None


def consume_code(conn: Connection, code_hash: bytes, now: datetime) -> bool:
    """Mark the code used, atomically: True for the first exchange only."""
    return _CONSUME_CODE.execute(conn, {"h": code_hash, "now": now}) == 1


def spent_codes(before: datetime) -> ColumnElement[bool]:
    """The codes expired by ``before``: used or not, a code stays until then
    as the tombstone that catches its reuse (query_authorization_code in
    consent/oauth/grants/authorization_code.py), then goes (vrm/purge.py)."""
    return CODE.c.expires_at < before


def purge_assertions(conn: Connection, now: datetime) -> None:
    _PURGE_ASSERTIONS.execute(conn, {"now": now})


def insert_assertion(conn: Connection, **values: Any) -> None:
    _INSERT_ASSERTION.execute(conn, values)


# -- device authorization requests (RFC 8628) --------------------------------


def insert_device(conn: Connection, **values: Any) -> None:
    """A new device authorization request (not a hot path)."""
    conn.execute(insert(DEVICE).values(**values))


def device(conn: Connection, device_hash: bytes) -> DeviceAuthorization | None:
    row = conn.execute(select(DEVICE).where(DEVICE.c.device_hash == device_hash)).mappings().first()
    return loaded(DeviceAuthorization, row) if row is not None else None


def device_by_user_code(conn: Connection, user_code_hash: bytes) -> DeviceAuthorization | None:
    found = select(DEVICE).where(DEVICE.c.user_code_hash == user_code_hash)
    row = conn.execute(found).mappings().first()
    return loaded(DeviceAuthorization, row) if row is not None else None


def polled(conn: Connection, device_hash: bytes, now: datetime, interval: int) -> None:
    """The device polled at ``now``; from now on it waits ``interval`` s."""
    conn.execute(
        update(DEVICE)
        .where(DEVICE.c.device_hash == device_hash)
        .values(polled_at=now, interval=interval)
    )


def decide_device(
    conn: Connection,
    user_code_hash: bytes,
    customer_id: str,
    approved: bool,
    now: datetime,
    root_sealed: bytes | None = None,
) -> bool:
    """The customer's answer, atomically: True if the request was still
    waiting for one (and had not expired). ``root_sealed``: their
    customer-held root key, sealed to the device code
    (consent/oauth/first_party.py)."""
    changed = conn.execute(
        update(DEVICE)
        .where(
            DEVICE.c.user_code_hash == user_code_hash,
            DEVICE.c.approved.is_(None),
            DEVICE.c.expires_at > now,
        )
        .values(approved=approved, customer_id=customer_id, decided_at=now, root_sealed=root_sealed)
    )
    return changed.rowcount == 1


def consume_device(conn: Connection, device_hash: bytes, now: datetime) -> bool:
    """Mark the approved device code used, atomically: True for the first
    exchange only. Its seal of a root key goes: the tokens hold theirs."""
    changed = conn.execute(
        update(DEVICE)
        .where(
            DEVICE.c.device_hash == device_hash,
            DEVICE.c.approved.is_(True),
            DEVICE.c.used_at.is_(None),
        )
        .values(used_at=now, root_sealed=None)
    )
    return changed.rowcount == 1


def spent_devices(before: datetime) -> ColumnElement[bool]:
    """The device requests expired by ``before`` (used or not: a used one
    stays until then as the tombstone that catches its reuse)."""
    return DEVICE.c.expires_at < before
