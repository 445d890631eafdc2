"""auditors: clients that read the audit log and nothing else

An auditor is an OAuth client like a vendor (``vrm auditors add``), with
``role`` ``auditor``: it takes client-credentials tokens with the scope
``audit:read`` only, and never reads customer data (consent.policy).
Every existing client is a vendor.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 05:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("vendor") as batch:
        batch.add_column(
            sa.Column(
                "role",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="vendor",
            )
        )
    with op.batch_alter_table("vendor") as batch:
        batch.alter_column("role", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("vendor") as batch:
        batch.drop_column("role")
