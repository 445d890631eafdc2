"""tokens carry their row id; hash indexes only for older tokens

Tokens issued from now on carry the id of their row and are found by the
primary key; the unique constraints on the token hashes go. Rows already
there are marked ``legacy`` and stay findable by hash, through partial
unique indexes that hold only them, so tokens issued before keep working.
Downgrading puts the unique constraints back; tokens issued meanwhile
still work then, since their hashes are of the whole token.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LEGACY = sa.text("legacy IS NOT NULL")
# Names for 0002's unnamed unique constraints as SQLite's batch mode reflects
# them; PostgreSQL named them itself.
NAMING = {"uq": "%(table_name)s_%(column_0_name)s_key"}


def upgrade() -> None:
    with op.batch_alter_table("oauth_token", naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column("legacy", sa.Boolean(), nullable=True))
        batch_op.drop_constraint("oauth_token_access_hash_key", type_="unique")
        batch_op.drop_constraint("oauth_token_refresh_hash_key", type_="unique")
    op.execute(sa.text("UPDATE oauth_token SET legacy = true"))
    for name, column in (("access", "access_hash"), ("refresh", "refresh_hash")):
        op.create_index(
            f"ix_oauth_token_legacy_{name}",
            "oauth_token",
            [column],
            unique=True,
            sqlite_where=LEGACY,
            postgresql_where=LEGACY,
        )


def downgrade() -> None:
    op.drop_index("ix_oauth_token_legacy_refresh", table_name="oauth_token")
    op.drop_index("ix_oauth_token_legacy_access", table_name="oauth_token")
    with op.batch_alter_table("oauth_token", naming_convention=NAMING) as batch_op:
        batch_op.drop_column("legacy")
        batch_op.create_unique_constraint("oauth_token_access_hash_key", ["access_hash"])
        batch_op.create_unique_constraint("oauth_token_refresh_hash_key", ["refresh_hash"])
