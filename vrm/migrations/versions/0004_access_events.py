"""access events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:09:43.581433
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_event",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("not_modified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("access_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_event_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_access_event_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_access_event_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_event_vendor_id"), ["vendor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_event_vendor_id"))
        batch_op.drop_index(batch_op.f("ix_access_event_grant_id"))
        batch_op.drop_index(batch_op.f("ix_access_event_customer_id"))
        batch_op.drop_index(batch_op.f("ix_access_event_at"))

    op.drop_table("access_event")
