"""the audit log's entries keep two indexes fewer

Every vendor read and token appends an entry, and each index is one more
b-tree written in the request's transaction. The filters by time and by
type (the customer's access log, the auditors' entries) run within one
customer's or one vendor's entries, or in log order, which the indexes on
(customer, idx), (vendor_id, idx) and the primary key serve; the indexes on
``at`` and ``type`` alone are dropped (bench/audit.py).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 06:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.drop_index("ix_audit_entry_at")
        batch.drop_index("ix_audit_entry_type")


def downgrade() -> None:
    with op.batch_alter_table("audit_entry") as batch:
        batch.create_index("ix_audit_entry_at", ["at"], unique=False)
        batch.create_index("ix_audit_entry_type", ["type"], unique=False)
