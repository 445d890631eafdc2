"""device authorization requests (RFC 8628) of the store's own client

The customer's command line, ``vrm-me``, logs in with the device
authorization grant (consent/oauth/first_party.py, registered at start-up).
A request waits in ``device_authorization`` for the customer's answer on
the device page, its device code and user code kept as keyed hashes only.
Downgrading also forgets the first-party client (its tokens go with it).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 13:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_authorization",
        sa.Column("device_hash", sa.LargeBinary(), nullable=False),
        sa.Column("user_code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("polled_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("approved", sa.Boolean(), nullable=True),
        sa.Column("decided_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_hash"),
    )
    op.create_index(
        "ix_device_authorization_user_code_hash",
        "device_authorization",
        ["user_code_hash"],
        unique=True,
    )
    op.create_index("ix_device_authorization_expires_at", "device_authorization", ["expires_at"])
    op.create_index("ix_device_authorization_customer_id", "device_authorization", ["customer_id"])


def downgrade() -> None:
    op.drop_table("device_authorization")
    op.execute(sa.text("DELETE FROM vendor WHERE id = 'vrm-me'"))
