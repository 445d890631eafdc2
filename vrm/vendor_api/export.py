"""The vendor API's sections of the customer's export (vrm/export).

- ``access_log``: every read and deposit a vendor made of the customer's
  data (the recipients of GDPR Art. 15(1)(c)): when, which vendor, under
  which grant and purpose, which categories and fields, the pairwise
  subject it saw; names of fields only, as the access_event row holds them;
- ``deposits``: the history events vendors added, by vendor and time.

Handed to the store by create_app (vrm/app.py), never registered on import.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, select

from consent.vendors.models import Vendor
from vrm.export.service import Section, Source
from vrm.vendor_api.models import AccessEvent, VendorDeposit


class DepositExported(BaseModel):
    vendor_id: str
    created_at: datetime
    # The customer's own id of the event (as in the history section).
    event_id: str


def deposits_of(*, session: Session, customer_id: str) -> list[DepositExported]:
    """Every deposit record the store holds for the customer, oldest first.

    The one read of vendor_deposit for the export: issue 13 keys
    ``event_id`` with an HMAC, and that change puts here how the
    customer's event id is found again."""
    rows = session.exec(
        select(VendorDeposit)
        .where(col(VendorDeposit.customer_id) == customer_id)
        .order_by(col(VendorDeposit.created_at))
    ).all()
    return [
        DepositExported(vendor_id=r.vendor_id, created_at=r.created_at, event_id=r.event_id)
        for r in rows
    ]


class _Names:
    """Vendor names, read once each. A vendor's access events and deposits
    outlive its registration: then its name is null."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.names: dict[str, str | None] = {}

    def vendor(self, vendor_id: str) -> dict[str, str | None]:
        if vendor_id not in self.names:
            found = self.session.get(Vendor, vendor_id)
            self.names[vendor_id] = found.name if found is not None else None
        return {"id": vendor_id, "name": self.names[vendor_id]}


def _access_log(source: Source) -> list[dict[str, Any]]:
    rows = source.session.exec(
        select(AccessEvent)
        .where(col(AccessEvent.customer_id) == source.customer.id)
        .order_by(col(AccessEvent.at), col(AccessEvent.id))
    ).all()
    names = _Names(source.session)
    return [
        {
            "id": r.id,
            "at": r.at.isoformat(),
            "vendor": names.vendor(r.vendor_id),
            "action": r.action,
            "grant_id": r.grant_id,
            "purpose": r.purpose,
            "subject": r.subject,
            "categories": r.categories,
            "fields": r.fields,
            "not_modified": r.not_modified,
        }
        for r in rows
    ]


def _deposits(source: Source) -> list[dict[str, Any]]:
    names = _Names(source.session)
    return [
        {
            "vendor": names.vendor(d.vendor_id),
            "created_at": d.created_at.isoformat(),
            "event_id": d.event_id,
        }
        for d in deposits_of(session=source.session, customer_id=source.customer.id)
    ]


SECTIONS: dict[str, Section] = {"access_log": _access_log, "deposits": _deposits}
