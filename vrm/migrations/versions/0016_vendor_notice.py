"""revocation notices: the outbox of notices pushed to vendors

One row per tombstone on a vendor's feed whose vendor registered a
``notify_uri`` (consent/notices): the Security Event Token's ``jti``, where
its delivery stands, when it is next due. It goes with its tombstone.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 08:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vendor_notice",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("jti", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("delivered_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["seq"], ["feed_notice.seq"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("jti"),
    )
    with op.batch_alter_table("vendor_notice") as batch:
        batch.create_index("ix_vendor_notice_state_due", ["state", "due_at"], unique=False)
        batch.create_index("ix_vendor_notice_vendor_id", ["vendor_id"], unique=False)


def downgrade() -> None:
    op.drop_table("vendor_notice")
