"""The consent layer's sections of the customer's export (vrm/export).

- ``grants``: every grant with its change history, as GET /me/grants shows it;
- ``receipts``: each grant's consent record, signed (consent/grants/receipts.py);
- ``pairwise_ids``: the identifier each vendor the customer has or had a
  grant with knows them by (OIDC Core 8.1), so the customer can match what
  a vendor holds or says about them to this store. (A vendor's grants go
  with its registration; the subject each read carried stays in the
  access log section.)

Handed to the store by create_app (vrm/app.py), never registered on import.
"""

from __future__ import annotations

from typing import Any

from consent.grants import receipts, service
from consent.grants.routes import public
from consent.vendors.models import Vendor
from vrm.export.service import Section, Source
from vrm.keys.pairwise import pairwise_subject


def _grants(source: Source) -> list[dict[str, Any]]:
    return [
        public(source.session, g).model_dump(mode="json")
        for g in service.list_for_customer(source.session, source.customer.id)
    ]


def _receipts(source: Source) -> list[dict[str, str]]:
    return [
        {
            "grant_id": g.id,
            "media_type": receipts.MEDIA_TYPE,
            "jws": receipts.receipt(source.session, source.vault, source.settings, g),
        }
        for g in service.list_for_customer(source.session, source.customer.id)
    ]


def _pairwise_ids(source: Source) -> list[dict[str, Any]]:
    grants = service.list_for_customer(source.session, source.customer.id)
    out = []
    for vendor_id in sorted({g.vendor_id for g in grants}):
        vendor = source.session.get(Vendor, vendor_id)
        assert vendor is not None  # noqa: S101 - a grant's foreign key
        out.append(
            {
                "vendor": {"id": vendor.id, "name": vendor.name},
                "subject": pairwise_subject(source.vault, vendor.id, source.customer.id),
            }
        )
    return out


SECTIONS: dict[str, Section] = {
    "grants": _grants,
    "receipts": _receipts,
    "pairwise_ids": _pairwise_ids,
}
