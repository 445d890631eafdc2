"""a refresh token's own scope, when wider than its access token's

A refresh may ask for a narrower access token (RFC 6749 section 6); the
refresh token issued with it keeps what the one used could do, as its grant
allows. Both tokens share a row, so the row says the refresh token's scope
when it differs; NULL (every row before this) means the same as ``scope``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column at the end: no table rewrite on either database.
    op.add_column(
        "oauth_token",
        sa.Column("refresh_scope", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("oauth_token") as batch:
        batch.drop_column("refresh_scope")
