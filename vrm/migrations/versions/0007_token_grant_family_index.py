"""one index on a token's grant and family instead of one on each

A family of tokens never leaves its grant, so the family is found under its
grant: one index on (grant_id, family_id) serves both the grant's tokens
(revoking a grant, the cascade when it goes) and a family's (a replayed
refresh token, a reused code). Each refresh used to add an entry to two
indexes at two unrelated places; now to one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 16:10:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_oauth_token_grant_family", "oauth_token", ["grant_id", "family_id"])
    op.drop_index("ix_oauth_token_grant_id", table_name="oauth_token")
    op.drop_index("ix_oauth_token_family_id", table_name="oauth_token")


def downgrade() -> None:
    op.create_index("ix_oauth_token_family_id", "oauth_token", ["family_id"])
    op.create_index("ix_oauth_token_grant_id", "oauth_token", ["grant_id"])
    op.drop_index("ix_oauth_token_grant_family", table_name="oauth_token")
