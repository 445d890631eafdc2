"""the command line's tokens carry a customer-held root key

A customer-held root key opens only with something the customer holds
(0019). The command line, ``vrm-me``, holds OAuth tokens, not a session
cookie: its token rows keep the root key sealed under a key only the
access token gives and under one only the refresh token gives
(``oauth_token.root_by_access``, ``root_by_refresh``); between the
customer's approval on the device page and the device's exchange of its
code, the device request keeps it sealed to a public key whose private key
only the device code gives (``device_authorization.root_key``,
``root_sealed``). NULL for every vendor's token and every server-held
customer. Downgrading drops the seals: the command line of a customer-held
customer then reads nothing until it logs in again.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_token") as batch:
        batch.add_column(sa.Column("root_by_access", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("root_by_refresh", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("device_authorization") as batch:
        batch.add_column(sa.Column("root_key", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("root_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_authorization") as batch:
        batch.drop_column("root_sealed")
        batch.drop_column("root_key")
    with op.batch_alter_table("oauth_token") as batch:
        batch.drop_column("root_by_refresh")
        batch.drop_column("root_by_access")
