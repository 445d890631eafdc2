"""a check of each server key, so a whole key from elsewhere is refused

Each server key's HMAC of a fixed message, kept the first time the key is
loaded (vrm/keys/server.py): until now only the blind-index key could be
checked against the database, through the emails it indexed, and that
needs customers whose email the server can open, which customers holding
their own root keys are not. Databases from before keep their checks at
their next start, after the existing checks passed.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 16:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_key_check",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("mac", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("server_key_check")
