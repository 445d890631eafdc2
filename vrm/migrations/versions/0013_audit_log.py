"""the verifiable audit log: entries, tree, checkpoints, cosignatures

One append-only log of consent, token and access events (consent/audit).
The database refuses to change it: triggers abort every UPDATE and DELETE
on ``audit_entry``, ``audit_node``, ``audit_checkpoint`` and
``audit_cosignature`` (and TRUNCATE on PostgreSQL), so rewriting the record
takes dropping the triggers first, which a checkpoint already signed, or a
witness, then exposes. ``audit_head`` holds the log's size, 0 here.

Each customer gets ``audit_salt``, random: their pseudonym in the log and
the salt of its commitments, erased with the account.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:30:00.000000
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

APPEND_ONLY = ("audit_entry", "audit_node", "audit_checkpoint", "audit_cosignature")
SALT_BYTES = 32


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(
        sa.table("audit_head", sa.column("id", sa.Integer), sa.column("size", sa.BigInteger)),
        [{"id": 1, "size": 0}],
    )
    op.create_table(
        "audit_entry",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("customer", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    with op.batch_alter_table("audit_entry") as batch:
        batch.create_index("ix_audit_entry_at", ["at"], unique=False)
        batch.create_index("ix_audit_entry_type", ["type"], unique=False)
        batch.create_index("ix_audit_entry_customer_idx", ["customer", "idx"], unique=False)
        batch.create_index("ix_audit_entry_vendor_idx", ["vendor_id", "idx"], unique=False)
    op.create_table(
        "audit_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("signed_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("size"),
    )
    op.create_table(
        "audit_cosignature",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("witness", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("line", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("received_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", "witness"),
    )
    with op.batch_alter_table("customer") as batch:
        batch.add_column(sa.Column("audit_salt", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    customer = sa.table("customer", sa.column("id", sa.String), sa.column("audit_salt"))
    for (customer_id,) in bind.execute(sa.select(customer.c.id)).all():
        bind.execute(
            customer.update()
            .where(customer.c.id == customer_id)
            .values(audit_salt=secrets.token_bytes(SALT_BYTES))
        )
    with op.batch_alter_table("customer") as batch:
        batch.alter_column("audit_salt", existing_type=sa.LargeBinary(), nullable=False)
    _refuse_changes(bind.dialect.name)


def _refuse_changes(dialect: str) -> None:
    if dialect == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'the audit log is append-only: % on % refused', "
            "TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for name in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
                "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON {name} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )
        return
    for name in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {name}_no_{action.lower()} BEFORE {action} ON {name} "
                f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: "
                f"{action} on {name} refused'); END"
            )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for name in APPEND_ONLY:
        op.drop_table(name)
    if postgresql:
        op.execute("DROP FUNCTION audit_append_only()")
    op.drop_table("audit_head")
    with op.batch_alter_table("customer") as batch:
        batch.drop_column("audit_salt")
