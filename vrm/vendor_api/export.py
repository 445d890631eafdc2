"""The vendor API's sections of the customer's export (vrm/export).

- ``access_log``: every read and deposit a vendor made of the customer's
  data (the recipients of GDPR Art. 15(1)(c)): when, which vendor, under
  which grant and purpose, which categories and fields, the pairwise
  subject it saw; names of fields only, as the access_event row holds them;
- ``deposits``: the history events vendors added, by vendor and day
  (vrm/history/deposits.py keeps no finer time).

Handed to the store by create_app (vrm/app.py), never registered on import.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from consent.vendors.models import Vendor
from vrm.export.service import Section, Source
from vrm.history.deposits import deposits_of
from vrm.vendor_api.models import AccessEvent


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
            "created_on": d.created_on.isoformat(),
            "event_id": d.event_id,
        }
        for d in deposits_of(
            session=source.session, vault=source.vault, customer_id=source.customer.id
        )
    ]


SECTIONS: dict[str, Section] = {"access_log": _access_log, "deposits": _deposits}
