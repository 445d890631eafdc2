"""What the audit tests do to the log from outside the product: plant an
entry the server never wrote, or rewrite history past the triggers, as an
operator holding the database could."""

from __future__ import annotations

from sqlalchemy import Engine, text

from consent.audit import log
from consent.audit.entries import Event
from consent.audit.models import APPEND_ONLY
from vrm.dbtypes import utcnow

PURPOSE = "dpv:ServiceProvision"


def plant_read(
    engine: Engine, *, customer_id: str, vendor_id: str, grant_id: str, fields: list[str]
) -> int:
    """A ``data.read`` entry of ``fields`` under the grant, appended as the
    server would have; its index."""
    category = fields[0].split(".")[0]
    event = Event(
        type="data.read",
        at=utcnow(),
        customer_id=customer_id,
        vendor_id=vendor_id,
        grant_id=grant_id,
        details={"via": "data", "purpose": PURPOSE, "categories": [category], "fields": fields},
        personal={"subject": "s"},
    )
    with engine.begin() as conn:
        index = log.append(conn, [event])
    assert index is not None
    return index


def grow(engine: Engine, count: int) -> None:
    """``count`` entries of no customer (vendors registered)."""
    with engine.begin() as conn:
        log.append(
            conn,
            [Event(type="vendor.registered", at=utcnow(), vendor_id=f"v{i}") for i in range(count)],
        )


def rewrite_history(engine: Engine, keep: int) -> None:
    """Drop the log after entry ``keep`` with its tree, checkpoints and
    cosignatures, past the triggers (dropped on SQLite; PostgreSQL's skipped
    by a superuser's replica role)."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for table in APPEND_ONLY:
                for action in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_{action}"))
        conn.execute(text("DELETE FROM audit_entry WHERE idx >= :k"), {"k": keep})
        for table in ("audit_node", "audit_checkpoint", "audit_cosignature"):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE audit_head SET size = :k"), {"k": keep})
