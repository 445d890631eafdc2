"""Everything the store holds about a customer, as one JSON document
(GDPR Art. 15 and 20), and the JSON Schema it follows (``schema.json``).

The store's own sections (account, profile, preferences, history,
sessions) are here. The layers above hand theirs in when the app is
composed (``vrm.app.create_app``): the grants, their signed receipts and
the pairwise ids (consent/grants/export.py), the access log and the
deposits (vrm/vendor_api/export.py), the audit log's entries about the
customer (consent/audit/customer.py). The store imports none of them: a
lower layer never imports a higher one.

``schema_version`` changes whenever a section's shape does, and with it
the ``$id`` of ``schema.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sqlmodel import Session

from vrm.accounts import service as accounts
from vrm.accounts import sessions
from vrm.accounts.models import Customer
from vrm.catalogue import DOCUMENT_CATEGORIES
from vrm.dbtypes import utcnow
from vrm.history import service as history
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.settings import Settings

SCHEMA = "urn:vrm:export"
SCHEMA_VERSION = 3
SCHEMA_MEDIA_TYPE = "application/schema+json"


@dataclass(frozen=True)
class Source:
    """What every section reads from: one transaction, the keys, the
    server's settings and the customer being exported."""

    session: Session
    vault: Vault
    settings: Settings
    customer: Customer


Section = Callable[[Source], Any]


def _history(source: Source) -> list[dict[str, Any]]:
    events = history.all_events(
        session=source.session, vault=source.vault, customer_id=source.customer.id
    )
    return [e.model_dump(mode="json") for e in events]


def _sessions(source: Source) -> list[dict[str, Any]]:
    # Every session row the store holds, expired ones too until they are
    # purged: the export is what is stored, not what still works.
    rows = sessions.sessions_of(
        session=source.session,
        vault=source.vault,
        customer_id=source.customer.id,
        include_expired=True,
    )
    # ``current`` says which is the caller's own in GET /me/sessions; an
    # export is a file, read later, where it means nothing.
    return [row.model_dump(mode="json", exclude={"current"}) for row in rows]


STORE_SECTIONS: dict[str, Section] = {"history": _history, "sessions": _sessions}


def export(
    *,
    session: Session,
    vault: Vault,
    settings: Settings,
    customer: Customer,
    sections: Mapping[str, Section],
) -> dict[str, Any]:
    """The export of ``customer``: the store's sections, then ``sections``
    from the layers above, in the order given."""
    source = Source(session=session, vault=vault, settings=settings, customer=customer)
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
    for category in DOCUMENT_CATEGORIES:
        document[category] = records.read_document(
            session=session, vault=vault, customer_id=customer.id, category=category
        ).public
    for name, section in {**STORE_SECTIONS, **sections}.items():
        document[name] = section(source)
    # A section may write (the audit log records the export itself).
    session.commit()
    return document


@cache
def json_schema() -> dict[str, Any]:
    """The export's JSON Schema (draft 2020-12), as shipped in the package."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
