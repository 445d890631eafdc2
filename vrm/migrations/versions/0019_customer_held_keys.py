"""customer-held root keys: their wrappings, the session's seal, the escrow

A customer-held root key is wrapped by the key the customer's password
gives and by the recovery key's (``customer.root_by_password``,
``customer.root_by_recovery``), sealed for each live session under a key
only the session cookie gives (``login_session.root_sealed``), and the data
keys a grant shares are escrowed for it in ``key_escrow``. Customers from
before keep their server-held root keys (all three NULL) until they move
over (docs/keys.md, "Customer-held keys").

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("root_by_password", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("root_by_recovery", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("login_session") as batch:
        batch.add_column(sa.Column("root_sealed", sa.LargeBinary(), nullable=True))
    op.create_table(
        "key_escrow",
        sa.Column("holder_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("escrow_version", sa.Integer(), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("holder_id", "category", "version"),
    )
    op.create_index("ix_key_escrow_key", "key_escrow", ["customer_id", "category", "version"])


def downgrade() -> None:
    # A customer-held root key cannot go back to the key store from here:
    # refuse rather than lose every such customer's data.
    bind = op.get_bind()
    held = bind.execute(
        sa.text("SELECT count(*) FROM customer WHERE root_by_password IS NOT NULL")
    ).scalar_one()
    if held:
        raise RuntimeError(
            f"{held} customers hold their own root keys; downgrading below 0019 would lose "
            "their data: erase them first"
        )
    op.drop_table("key_escrow")
    with op.batch_alter_table("login_session") as batch:
        batch.drop_column("root_sealed")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("root_by_recovery")
        batch.drop_column("root_by_password")
