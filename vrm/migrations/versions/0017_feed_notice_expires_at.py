"""a grant shortened is a notice too: its new expiry

When the customer brings a grant's expiry closer, the vendor may keep what
it holds only until then, and is told so by a revocation notice
(consent/notices). The notice reads what it says from its ``feed_notice``
row, of kind ``shortened``, which now carries the new ``expires_at``. The
feed does not show these rows: the expiry's own tombstone comes when it is
due.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 09:05:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vrm.dbtypes

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feed_notice") as batch:
        batch.add_column(
            sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("feed_notice") as batch:
        batch.drop_column("expires_at")
