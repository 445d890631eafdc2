"""vendor deposits name no event: keyed body hash, no event id, a day

A deposit row held the id of the event it deposited and the time to the
microsecond, so a join gave the vendor and the time of each purchase, and
an unkeyed SHA-256 of the body that whoever could guess the body could
confirm (issue 13). From now on the event's id is derived from the key
hash under the server's deposit key, the body hash is keyed, and the row
keeps only the UTC day (vrm/history/deposits.py).

A migration cannot reach the key store (``vrm migrate`` runs before the
keys are opened, and on a machine that may not hold them), so it cannot
key what the rows hold. Existing rows therefore lose their event id and
their body hash, and keep their key hash (already keyed) and their day:
each key used before this migration stays spent, and a retry with it is
409 whatever its body, as for an event the customer deleted; it neither
adds the event twice nor says which event it was. Recomputing the body
hash from the sealed event would need the customer's keys too, and would
be wrong for any event the customer has since edited.

Downgrading puts the columns back with what can be said: no event id
(empty), midnight of the day, and an empty body hash, so that the code
before it answers a retry of any key used meanwhile with 422 (reused): never a
second event.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-06 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import vrm.dbtypes

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLE = "vendor_deposit"
INDEX = "ix_vendor_deposit_customer_id"


def _rows() -> sa.TableClause:
    columns = ("event_id", "created_at", "created_on", "body_hash")
    return sa.table(TABLE, *(sa.column(c) for c in columns))


def _day_of_created_at() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "(created_at AT TIME ZONE 'UTC')::date"
    return "date(created_at)"  # SQLite holds UTC as text: '2026-12-06 17:59:...'


def _midnight_of_created_on() -> str:
    if op.get_bind().dialect.name == "postgresql":
        return "created_on::timestamp AT TIME ZONE 'UTC'"
    return "created_on || ' 00:00:00.000000'"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("created_on", sa.Date(), nullable=True))
        batch.alter_column("body_hash", existing_type=sa.LargeBinary(), nullable=True)
    op.execute(
        sa.update(_rows()).values(
            created_on=sa.literal_column(_day_of_created_at()), body_hash=sa.null()
        )
    )
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column("created_on", existing_type=sa.Date(), nullable=False)
        batch.drop_column("event_id")
        batch.drop_column("created_at")
        batch.create_index(INDEX, ["customer_id"])


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_index(INDEX)
        batch.add_column(
            sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch.add_column(
            sa.Column("created_at", vrm.dbtypes.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        sa.update(_rows()).values(
            event_id="", created_at=sa.literal_column(_midnight_of_created_on()), body_hash=b""
        )
    )
    with op.batch_alter_table(TABLE) as batch:
        batch.alter_column(
            "event_id", existing_type=sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False
        )
        batch.alter_column(
            "created_at", existing_type=vrm.dbtypes.UTCDateTime(timezone=True), nullable=False
        )
        batch.alter_column("body_hash", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("created_on")
