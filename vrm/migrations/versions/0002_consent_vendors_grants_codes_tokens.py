"""consent: vendors, grants, codes, tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "initial_access_token",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "vendor",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("logo_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("policy_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("notify_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column(
            "token_endpoint_auth_method",
            sqlmodel.sql.sqltypes.AutoString(length=40),
            nullable=False,
        ),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("registered_by", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("registration_token_hash", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "consent_grant",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("openid", sa.Boolean(), nullable=False),
        sa.Column("authorization_details", sa.JSON(), nullable=True),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("legal_basis", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("retention", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("consent_grant", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_consent_grant_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_consent_grant_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_consent_grant_vendor_id"), ["vendor_id"], unique=False)

    op.create_table(
        "authorization_code",
        sa.Column("code_hash", sa.LargeBinary(), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("redirect_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("code_challenge", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column(
            "code_challenge_method", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False
        ),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.Column("auth_time", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grant_id"], ["consent_grant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorization_code_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authorization_code_grant_id"), ["grant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_authorization_code_vendor_id"), ["vendor_id"], unique=False
        )

    op.create_table(
        "grant_change",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["grant_id"], ["consent_grant.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("seq"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("grant_change", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grant_change_grant_id"), ["grant_id"], unique=False)

    op.create_table(
        "oauth_token",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("access_hash", sa.LargeBinary(), nullable=False),
        sa.Column("refresh_hash", sa.LargeBinary(), nullable=True),
        sa.Column("family_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("vendor_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("grant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("customer_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("scope", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("issued_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refresh_expires_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grant_id"], ["consent_grant.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["vendor_id"], ["vendor.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("access_hash"),
        sa.UniqueConstraint("refresh_hash"),
    )
    with op.batch_alter_table("oauth_token", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_token_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_token_family_id"), ["family_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_token_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_oauth_token_vendor_id"), ["vendor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_token_vendor_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_token_grant_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_token_family_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_token_customer_id"))

    op.drop_table("oauth_token")
    with op.batch_alter_table("grant_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grant_change_grant_id"))

    op.drop_table("grant_change")
    with op.batch_alter_table("authorization_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorization_code_vendor_id"))
        batch_op.drop_index(batch_op.f("ix_authorization_code_grant_id"))
        batch_op.drop_index(batch_op.f("ix_authorization_code_customer_id"))

    op.drop_table("authorization_code")
    with op.batch_alter_table("consent_grant", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consent_grant_vendor_id"))
        batch_op.drop_index(batch_op.f("ix_consent_grant_expires_at"))
        batch_op.drop_index(batch_op.f("ix_consent_grant_customer_id"))

    op.drop_table("consent_grant")
    op.drop_table("vendor")
    op.drop_table("initial_access_token")
