"""private_key_jwt assertion ids

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_assertion",
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("jti_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("vendor_id", "jti_hash"),
    )
    with op.batch_alter_table("client_assertion", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_assertion_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("client_assertion", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_assertion_expires_at"))

    op.drop_table("client_assertion")
