"""What each kind of change writes to the log: the one place that turns a
consent, token, data or account event into log entries
(docs/audit.md#entry-types lists their members)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from consent.audit import log
from consent.audit.entries import Event
from consent.grants.models import Grant
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def consent_changed(
    conn: Connection, grant: Grant, kind: str, by: str, detail: Mapping[str, Any]
) -> None:
    """A grant given, narrowed, shortened, revoked or expired
    (consent/grants), with what it allows after the change."""
    details: dict[str, Any] = {
        "by": by,
        "purpose": grant.purpose,
        "scopes": sorted(grant.scopes),
        "expires_at": _iso(grant.expires_at),
    }
    if kind == "narrowed":
        details["from_scopes"] = sorted(detail["from"])
        details["scopes"] = sorted(detail["to"])
    elif kind == "shortened":
        details["from_expires_at"] = _iso(datetime.fromisoformat(detail["from"]))
        details["expires_at"] = _iso(datetime.fromisoformat(detail["to"]))
    log.append(
        conn,
        [
            Event(
                type=f"consent.{kind}",
                at=utcnow(),
                customer_id=grant.customer_id,
                vendor_id=grant.vendor_id,
                grant_id=grant.id,
                details=details,
            )
        ],
    )


def on_account_erased(session: Session, customer_id: str) -> Callable[[], None]:
    """The store's erasure hook (vrm.accounts.service.OnErase, vrm/hooks.py):
    while the customer's row and salt still exist, the erasure and the end
    of each of their unrevoked grants are logged. After the erasure the
    entries stay and verify, but nothing links them to anyone."""
    exists = session.exec(select(Customer.id).where(col(Customer.id) == customer_id)).first()
    if exists is not None:
        now = utcnow()
        live = session.exec(
            select(Grant).where(Grant.customer_id == customer_id, col(Grant.revoked_at).is_(None))
        ).all()
        events = [
            Event(
                type="consent.revoked",
                at=now,
                customer_id=customer_id,
                vendor_id=grant.vendor_id,
                grant_id=grant.id,
                details={
                    "by": "account_deleted",
                    "purpose": grant.purpose,
                    "scopes": sorted(grant.scopes),
                    "expires_at": _iso(grant.expires_at),
                },
            )
            for grant in live
        ]
        events.append(Event(type="account.erased", at=now, customer_id=customer_id))
        log.append(session.connection(), events)
    return lambda: None


def consent_denied(
    conn: Connection, *, customer_id: str, vendor_id: str, purpose: str, requested: list[str]
) -> None:
    """The customer turned a vendor's request down on the consent page."""
    log.append(
        conn,
        [
            Event(
                type="consent.denied",
                at=utcnow(),
                customer_id=customer_id,
                vendor_id=vendor_id,
                details={"purpose": purpose, "requested": sorted(requested)},
            )
        ],
    )
