"""the vendor as consented to, in each grant's first change entry

Since this revision the ``granted`` entry of a grant keeps a copy of the
vendor's name, logo, privacy policy URI and contacts as the customer saw
them when consenting (``consent/grants/vendor_copy.py``), so that a vendor
changing its metadata cannot rewrite the consent record.

For grants given before, what the customer was shown is unknowable: the
vendor row holds only its latest metadata. Those grants get the vendor as
it is at the upgrade, with ``recorded_at`` set to the time of the upgrade
and ``recorded_at_consent`` false, so the grant view and the receipt say
the copy was not made at consent. Data only; no schema change.

The downgrade removes only the copies this upgrade made; copies made at
consent stay (older code ignores members of ``detail`` it does not know).
The copy's shape is spelled out here rather than imported, so that this
revision keeps doing what it did when the application code moves on.

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-06 17:40:00.000000
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from vrm.dbtypes import utcnow

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_change = sa.table(
    "grant_change",
    sa.column("seq", sa.Integer),
    sa.column("grant_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("detail", sa.JSON),
)
_grant = sa.table("consent_grant", sa.column("id", sa.String), sa.column("vendor_id", sa.String))
_vendor = sa.table(
    "vendor",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("logo_uri", sa.String),
    sa.column("policy_uri", sa.String),
    sa.column("contacts", sa.JSON),
)


def _granted_entries(conn: sa.Connection) -> list[sa.Row[Any]]:
    return list(
        conn.execute(
            sa.select(
                _change.c.seq,
                _change.c.detail,
                _vendor.c.id,
                _vendor.c.name,
                _vendor.c.logo_uri,
                _vendor.c.policy_uri,
                _vendor.c.contacts,
            )
            .join(_grant, _grant.c.id == _change.c.grant_id)
            .join(_vendor, _vendor.c.id == _grant.c.vendor_id)
            .where(_change.c.kind == "granted")
            .order_by(_change.c.seq)
        )
    )


def _set(conn: sa.Connection, seq: int, detail: dict[str, Any]) -> None:
    conn.execute(sa.update(_change).where(_change.c.seq == seq).values(detail=detail))


def upgrade() -> None:
    conn = op.get_bind()
    now = utcnow().isoformat().replace("+00:00", "Z")
    for row in _granted_entries(conn):
        if isinstance(row.detail.get("vendor"), dict):
            continue
        copy = {
            "id": row.id,
            "name": row.name,
            "logo_uri": row.logo_uri,
            "policy_uri": row.policy_uri,
            "contacts": list(row.contacts or []),
            "recorded_at": now,
            "recorded_at_consent": False,
        }
        _set(conn, row.seq, row.detail | {"vendor": copy})


def downgrade() -> None:
    conn = op.get_bind()
    for row in _granted_entries(conn):
        copy = row.detail.get("vendor")
        if isinstance(copy, dict) and copy.get("recorded_at_consent") is False:
            _set(conn, row.seq, {k: v for k, v in row.detail.items() if k != "vendor"})
