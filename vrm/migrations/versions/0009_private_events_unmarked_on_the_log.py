"""the change log no longer tells which history events are private

Before this, ``data_change.op`` was ``hidden`` for an event private from the
start and ``delete`` for one made private later while it still existed, so
joining ``history_record`` to ``data_change`` listed exactly the events a
customer keeps private (issue 13). Now a row of an event that exists is
always ``put``, and whether any vendor may ever have been shown the event
is sealed in it (``StoredEvent.shared``, vrm/history/models.py).

Existing rows: ``hidden`` and ``delete`` of an event that still exists
become ``put``, at the position they hold (a vendor that already read past
it reads nothing again). A ``hidden`` row of an event deleted since goes:
a deleted event that was never shown leaves no row now. ``delete`` rows of
deleted events stay.

What this cannot do is put the flag in the events sealed before it: a
migration holds no keys and cannot open them. An event without the flag
reads as shared, for this trade-off: a vendor that may hold a legacy event
made private later (even one that had not yet read its deletion when the
server was upgraded) is always told to drop it; the price is that a legacy
event private from the start is treated the same way, so a vendor may be
sent its pairwise id in a deletion (when the customer changes or deletes it,
or when the vendor had not read past its row), though never its content.
The other reading (not shared) would have left some vendors holding events
their customer hid, with nothing ever telling them to drop them. Each such
event gets the flag the next time its customer changes it.

Downgrade leaves the rows as ``put``: which were private is sealed, and
the code before this reads a ``put`` row of a private event as "made
private since" and sends nothing, so no private event reaches a vendor;
a vendor that had not read the deletion of one made private before the
upgrade is not told again. (That code refuses the events sealed with the
flag, an unknown member to it: going back to it means going back to a
backup taken before the upgrade.)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text(
            "UPDATE data_change SET op = 'put'"
            " WHERE category = 'history' AND op IN ('hidden', 'delete')"
            " AND EXISTS (SELECT 1 FROM history_record h"
            " WHERE h.id = data_change.record_id AND h.customer_id = data_change.customer_id)"
        )
    )
    bind.execute(
        sa.text(
            "DELETE FROM data_change WHERE category = 'history' AND op = 'hidden'"
            " AND NOT EXISTS (SELECT 1 FROM history_record h"
            " WHERE h.id = data_change.record_id AND h.customer_id = data_change.customer_id)"
        )
    )


def downgrade() -> None:
    pass
