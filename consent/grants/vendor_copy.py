"""The vendor as the customer saw it when they said yes.

A vendor's metadata is the vendor's to change: a dynamically registered one
replaces it at its client configuration endpoint whenever it likes (RFC 7592
section 2.2). What the customer consented to is not: consent is given to a
controller the customer could identify (GDPR Art. 4(11) and 7(1)), and
ISO/IEC TS 27560 makes the controller part of the record. So the grant's
``granted`` change entry keeps, under ``detail["vendor"]``, a copy of all the
consent page (``consent/templates/consent.html``) shows about the vendor
(name, logo, privacy policy) and its contacts (the record's controller
contact). The grant view and the signed receipt are made from that copy, and
show a later change beside it, never in its place.

This module is the one home of that rule: :func:`record` makes the copy,
:func:`of_grant` reads it back with what changed since. A covering grant
given to a vendor that has changed since is not reused without asking
(:func:`consent.grants.service.find_covering`): the customer sees the new
name on the page, and the new grant records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from consent.grants.models import Grant, GrantChange
from consent.vendors.models import Vendor

# What the customer is shown about the vendor, in the order of the record.
SHOWN = ("name", "logo_uri", "policy_uri", "contacts")


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``, as the API's JSON writes datetimes."""
    return moment.isoformat().replace("+00:00", "Z")


def current(vendor: Vendor) -> dict[str, Any]:
    """What the vendor says about itself now."""
    return {
        "id": vendor.id,
        "name": vendor.name,
        "logo_uri": vendor.logo_uri,
        "policy_uri": vendor.policy_uri,
        "contacts": list(vendor.contacts),
    }


def record(vendor: Vendor, at: datetime) -> dict[str, Any]:
    """The copy kept in a ``granted`` entry, for consent given at ``at``.
    ``recorded_at_consent`` is False only in copies migration 0011 made for
    grants given before there was a copy."""
    return current(vendor) | {"recorded_at": iso(at), "recorded_at_consent": True}


@dataclass(frozen=True)
class VendorRecord:
    """The vendor as consented to, as it is now, and which members of
    :data:`SHOWN` differ (sorted; empty when nothing changed)."""

    consented: dict[str, Any]
    now: dict[str, Any]
    changed: list[str]


class MissingCopy(LookupError):
    """A grant whose ``granted`` entry has no vendor copy: every grant made
    since the copy existed has one, and migration 0011 gave one to the
    grants before, so the database was changed by hand."""


def consented(changes: list[GrantChange]) -> dict[str, Any]:
    """The copy in ``changes`` (a grant's change log, oldest first)."""
    for change in changes:
        if change.kind == "granted" and isinstance(change.detail.get("vendor"), dict):
            copy: dict[str, Any] = change.detail["vendor"]
            return copy
    grant_id = changes[0].grant_id if changes else "?"
    raise MissingCopy(f"grant {grant_id} has no copy of its vendor")


def of_grant(session: Session, grant: Grant, changes: list[GrantChange]) -> VendorRecord:
    """``grant``'s vendor as consented and as it is now; ``changes`` is the
    grant's change log, oldest first."""
    vendor = session.get(Vendor, grant.vendor_id)
    assert vendor is not None  # noqa: S101 - foreign key
    copy = consented(changes)
    now = current(vendor)
    return VendorRecord(
        consented=copy,
        now=now,
        changed=sorted(k for k in SHOWN if copy.get(k) != now[k]),
    )


def changed_since_consent(session: Session, grant: Grant) -> bool:
    """True if the vendor now shows the customer anything other than what
    the grant was given to."""
    granted = session.exec(
        select(GrantChange)
        .where(GrantChange.grant_id == grant.id, GrantChange.kind == "granted")
        .order_by(col(GrantChange.seq))
    ).all()
    return bool(of_grant(session, grant, list(granted)).changed)
