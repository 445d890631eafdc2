"""login sessions get an id, a device and a last-used time

The customer lists and ends sessions by ``id``, a random name unrelated to
the token. Sessions open at the upgrade stay open: each gets a fresh id,
``last_used_at`` from its login time, and no device (``device_ct`` NULL,
shown as "Unknown device"): a migration holds no keys to seal one with,
and the User-Agent they were opened from was never kept.

Revision ID: 0012
Revises: 0008
Create Date: 2026-12-06 17:45:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The data key version every sealed value has (vrm.keys.service).
DATA_KEY_VERSION = 1


def upgrade() -> None:
    with op.batch_alter_table("login_session") as batch:
        batch.add_column(
            sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch.add_column(
            sa.Column("last_used_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("key_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("device_ct", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    table = sa.table(
        "login_session",
        sa.column("token_hash", sa.LargeBinary()),
        sa.column("id", sa.String()),
        sa.column("created_at", vrm.dbtypes.UTCDateTime(timezone=True)),
        sa.column("last_used_at", vrm.dbtypes.UTCDateTime(timezone=True)),
        sa.column("key_version", sa.Integer()),
    )
    hashes = bind.execute(sa.select(table.c.token_hash)).scalars().all()
    for token_hash in hashes:
        bind.execute(
            table.update().where(table.c.token_hash == token_hash).values(id=uuid.uuid4().hex)
        )
    bind.execute(
        table.update().values(last_used_at=table.c.created_at, key_version=DATA_KEY_VERSION)
    )
    with op.batch_alter_table("login_session") as batch:
        batch.alter_column("id", existing_type=sa.String(length=32), nullable=False)
        batch.alter_column(
            "last_used_at", existing_type=vrm.dbtypes.UTCDateTime(timezone=True), nullable=False
        )
        batch.alter_column("key_version", existing_type=sa.Integer(), nullable=False)
        batch.create_index("ix_login_session_id", ["id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("login_session") as batch:
        batch.drop_index("ix_login_session_id")
        batch.drop_column("device_ct")
        batch.drop_column("key_version")
        batch.drop_column("last_used_at")
        batch.drop_column("id")
