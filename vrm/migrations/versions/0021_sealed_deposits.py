"""vendor deposits sealed to a customer who is away

A customer-held customer's history data key opens only in their session or
for a live grant that reads their history, so a vendor's deposit made
without either is sealed to the customer's X25519 public key
(``customer.deposit_public_key``; its private key sealed under their root
key in ``customer.deposit_private_key``) and kept in ``pending_deposit``
until their next log-in folds it into the history (docs/keys.md,
"Deposits while you are away"). Customers from before get their key pair
at that log-in; server-held ones never need one (both columns NULL).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("deposit_public_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("deposit_private_key", sa.LargeBinary(), nullable=True))
    op.create_table(
        "pending_deposit",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_pending_deposit_customer_id"), "pending_deposit", ["customer_id"], unique=False
    )


def downgrade() -> None:
    # A pending deposit opens only with the key pair dropped here: refuse
    # rather than lose what vendors deposited.
    bind = op.get_bind()
    held = bind.execute(sa.text("SELECT count(*) FROM pending_deposit")).scalar_one()
    if held:
        raise RuntimeError(
            f"{held} vendor deposits wait for their customers' next log-in; downgrading "
            "below 0021 would lose them"
        )
    op.drop_index(op.f("ix_pending_deposit_customer_id"), table_name="pending_deposit")
    op.drop_table("pending_deposit")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("deposit_private_key")
        batch.drop_column("deposit_public_key")
