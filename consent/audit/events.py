"""What each kind of change writes to the log: the one place that turns a
consent, token, data or account event into log entries
(docs/audit.md#entry-types lists their members)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session, col, select

from consent.audit import log
from consent.audit.entries import Event
from consent.grants.models import Grant
from consent.vendors.models import Vendor
from vrm.accounts.models import Customer
from vrm.dbtypes import utcnow


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _grant_details(grant: Grant, by: str) -> dict[str, Any]:
    """What every consent entry says of its grant."""
    return {
        "by": by,
        "purpose": grant.purpose,
        "scopes": sorted(grant.scopes),
        "expires_at": _iso(grant.expires_at),
    }


def consent_changed(
    conn: Connection, grant: Grant, kind: str, by: str, detail: Mapping[str, Any]
) -> None:
    """A grant given, narrowed, shortened, revoked or expired
    (consent/grants), with what it allows after the change."""
    details = _grant_details(grant, by)
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
                details=_grant_details(grant, "account_deleted"),
            )
            for grant in live
        ]
        events.append(Event(type="account.erased", at=now, customer_id=customer_id))
        log.append(session.connection(), events)
    return lambda: log.SALTS.forget(customer_id)


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


def family_hash(family_id: str) -> str:
    # A client-credentials token's family id is its row id, which is part of
    # the token itself: the log names families by a hash of the id.
    return hashlib.sha256(b"vrm token family " + family_id.encode()).hexdigest()[:32]


def token_issued(conn: Connection, row: Mapping[str, Any], grant_type: str) -> None:
    """A token issued at the token endpoint (``row``: the token's row, as
    consent/oauth/server.py writes it): ``token.refreshed`` for a refresh,
    ``token.issued`` otherwise."""
    kind = "token.refreshed" if grant_type == "refresh_token" else "token.issued"
    details: dict[str, Any] = {
        "grant_type": grant_type,
        "family": family_hash(row["family_id"]),
        "scopes": sorted(row["scope"].split()),
        "expires_at": _iso(row["expires_at"]),
    }
    if row["refresh_expires_at"] is not None:
        details["refresh_expires_at"] = _iso(row["refresh_expires_at"])
    log.append(
        conn,
        [
            Event(
                type=kind,
                at=row["issued_at"],
                customer_id=row["customer_id"],
                vendor_id=row["vendor_id"],
                grant_id=row["grant_id"],
                details=details,
            )
        ],
    )


def token_revoked(
    conn: Connection,
    *,
    vendor_id: str,
    customer_id: str | None,
    grant_id: str | None,
    family_id: str,
    whole_family: bool,
    reason: str,
    reused: str | None = None,
) -> None:
    """A token revoked (RFC 7009), or its whole family: at the vendor's
    request (``reason``: ``vendor``) or because a refresh token or code was
    used twice (``reason``: ``reuse``, ``reused``: which), which is logged
    first as ``token.reuse_detected``."""
    now = utcnow()
    common: dict[str, Any] = {
        "customer_id": customer_id,
        "vendor_id": vendor_id,
        "grant_id": grant_id,
    }
    events = []
    if reused is not None:
        events.append(
            Event(
                type="token.reuse_detected",
                at=now,
                details={"family": family_hash(family_id), "reused": reused},
                **common,
            )
        )
    events.append(
        Event(
            type="token.family_revoked" if whole_family else "token.revoked",
            at=now,
            details={"family": family_hash(family_id), "reason": reason},
            **common,
        )
    )
    log.append(conn, events)


_ACCESS_TYPES = {"read": "data.read", "write": "data.deposited"}


def data_access(
    *,
    action: str,
    at: datetime,
    customer_id: str,
    vendor_id: str,
    grant_id: str,
    subject: str,
    purpose: str,
    categories: list[str],
    fields: list[str],
    via: str,
    not_modified: bool = False,
) -> Event:
    """A vendor's read (``action`` ``read``) or deposit (``write``) of one
    customer's data, through ``via`` (``data``, ``feed``, ``deposit``,
    ``userinfo``): names of what was returned, never values. The subject
    the vendor knows the customer by is committed to, not written."""
    details: dict[str, Any] = {
        "via": via,
        "purpose": purpose,
        "categories": categories,
        "fields": fields,
    }
    if not_modified:
        details["not_modified"] = True
    return Event(
        type=_ACCESS_TYPES[action],
        at=at,
        customer_id=customer_id,
        vendor_id=vendor_id,
        grant_id=grant_id,
        details=details,
        personal={"subject": subject},
    )


def vendor_changed(conn: Connection, vendor: Vendor, kind: str, *, by: str) -> None:
    """A vendor registered (by the operator or by itself) or disabled; or
    an auditor (``auditor.registered``, ``auditor.disabled``)."""
    details: dict[str, Any] = {"by": by}
    if kind == "registered":
        details["name"] = vendor.name
    event = Event(type=f"{vendor.role}.{kind}", at=utcnow(), vendor_id=vendor.id, details=details)
    log.append(conn, [event])


def key_rotated(session: Session, customer_id: str, root_version: int, data_keys: int) -> None:
    """A customer's data keys rewrapped under a new root key version (``vrm
    keys rotate``; vrm.keys.service.OnRewrap, in the rewrap's transaction)."""
    event = Event(
        type="key.rotated",
        at=utcnow(),
        customer_id=customer_id,
        details={"root_version": root_version, "data_keys": data_keys},
    )
    log.append(session.connection(), [event])


def key_moved_to_customer(session: Session, customer_id: str) -> None:
    """A customer's root key moved from the key store to them at log-in
    (key_custody "customer"; vrm.accounts.service.OnKeysMoved, in the
    move's transaction): from then on the server reads only what their
    live grants escrow."""
    event = Event(type="key.moved_to_customer", at=utcnow(), customer_id=customer_id, details={})
    log.append(session.connection(), [event])


def notice_attempted(
    conn: Connection,
    *,
    at: datetime,
    vendor_id: str,
    customer_id: str | None,
    grant_id: str,
    jti: str,
    reason: str,
    attempt: int,
    outcome: str,
    acknowledged: bool,
    parked: bool,
) -> None:
    """One attempt to push a revocation notice (consent/notices): the one
    the vendor acknowledged is ``notice.acknowledged``, the others
    ``notice.attempted``; ``parked`` when it was the last. ``customer_id``
    is None once the account is erased: the entry then names nobody."""
    details: dict[str, Any] = {
        "notice": jti,
        "reason": reason,
        "attempt": attempt,
        "outcome": outcome,
    }
    if parked:
        details["parked"] = True
    event = Event(
        type="notice.acknowledged" if acknowledged else "notice.attempted",
        at=at,
        customer_id=customer_id,
        vendor_id=vendor_id,
        grant_id=grant_id,
        details=details,
    )
    log.append(conn, [event])
