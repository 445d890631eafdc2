"""Everything the store holds about a customer, as one JSON document.

Later domains (grants, access log) add their sections through
:data:`SECTIONS`; the schema version changes when a section's shape does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.catalogue import DOCUMENT_CATEGORIES
from vrm.dbtypes import utcnow
from vrm.history import service as history
from vrm.keys.service import Vault
from vrm.records import service as records

SCHEMA = "urn:vrm:export"
SCHEMA_VERSION = 1

Section = Callable[[Session, Vault, Customer], Any]


def _documents(session: Session, vault: Vault, customer: Customer) -> dict[str, Any]:
    return {
        category: records.read_document(
            session=session, vault=vault, customer_id=customer.id, category=category
        ).public
        for category in DOCUMENT_CATEGORIES
    }


SECTIONS: dict[str, Section] = {
    "history": lambda s, v, c: [
        e.model_dump(mode="json") for e in history.all_events(session=s, vault=v, customer_id=c.id)
    ],
}


def export(*, session: Session, vault: Vault, customer: Customer) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "exported_at": utcnow().isoformat(),
        "account": {
            "id": customer.id,
            "email": accounts.account_email(session=session, vault=vault, customer=customer),
            "created_at": customer.created_at.isoformat(),
            "password_changed_at": customer.password_changed_at.isoformat(),
        },
    }
    document.update(_documents(session, vault, customer))
    for name, section in SECTIONS.items():
        document[name] = section(session, vault, customer)
    return document
