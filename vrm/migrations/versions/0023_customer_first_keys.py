"""access events and pending deposits keyed by their customer first

Citus distributes a table by one column, and enforces a primary key only
when it includes that column (docs/scaling.md): ``access_event`` and
``pending_deposit`` were keyed by their own id alone, and are now keyed by
(``customer_id``, ``id``). Nothing finds either by the id alone. The ids
stay unique on their own in practice (random, or derived from a key that
names the customer); the database no longer checks that across customers.

On PostgreSQL the key is swapped in place, which rebuilds the index of a
table that grows with every vendor read: on a large ``access_event`` run
it in a quiet hour. SQLite rebuilds both tables (batch mode).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 20:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# PostgreSQL named the old keys itself; SQLite's are unnamed, and batch
# mode names them so when it reflects them, to drop them by that name.
NAMING = {"pk": "%(table_name)s_pkey"}
TABLES = ("access_event", "pending_deposit")


def _key(table: str, columns: list[str]) -> None:
    with op.batch_alter_table(table, naming_convention=NAMING) as batch:
        batch.drop_constraint(f"{table}_pkey", type_="primary")
        batch.create_primary_key(f"{table}_pkey", columns)


def upgrade() -> None:
    for table in TABLES:
        _key(table, ["customer_id", "id"])


def downgrade() -> None:
    for table in TABLES:
        _key(table, ["id"])
