"""Grant rules: create, find a covering one, describe, list.

A grant is active while it is neither revoked nor expired (:func:`is_active`);
tokens never outlive their grant, as every token use checks it. Taking
consent back (narrow, shorten, revoke, expiry, erasure) and telling the
vendor so is in consent/grants/revocation.py.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, select

from consent.audit import events as audit
from consent.grants import vendor_copy
from consent.grants.models import Grant, GrantChange
from consent.policy import (
    Access,
    fields_of,
    parse_scope,
    readable_categories,
    simplify,
    within,
)
from consent.scopes import DETAIL_TYPE, DataRequest
from consent.vendors.models import Vendor
from vrm.dbtypes import utcnow
from vrm.errors import NotFound, ValidationFailed
from vrm.feed import changes as feed
from vrm.keys.service import Vault
from vrm.records import sealing

# A grant lasts at most this long; the customer may always choose less.
MAX_GRANT_DAYS = 2 * 365
DEFAULT_GRANT_DAYS = 365


class Scoped(Protocol):
    """What the rules here read of a grant: a Grant, or a row of its
    columns read without the ORM (the feed reads a thousand a page)."""

    @property
    def scopes(self) -> list[str]: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def expires_at(self) -> datetime: ...


def accesses_of(grant: Scoped) -> list[Access]:
    return [parse_scope(s) for s in grant.scopes]


def is_active(grant: Scoped, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return grant.revoked_at is None and grant.expires_at > now


def status_of(grant: Grant, now: datetime | None = None) -> str:
    if grant.revoked_at is not None:
        return "revoked"
    return "active" if is_active(grant, now) else "expired"


def details_for(accesses: list[Access], purpose: str, grant: Grant) -> list[dict[str, Any]]:
    """RFC 9396 authorization details describing exactly ``accesses``."""
    groups: dict[tuple[str, str], list[str] | None] = {}
    for a in simplify(accesses):
        key = (a.category, a.action)
        if a.field is None:
            groups[key] = None
        elif key not in groups or groups[key] is not None:
            groups.setdefault(key, [])
            fields = groups[key]
            assert fields is not None  # noqa: S101 - set just above
            fields.append(a.field)
    out: list[dict[str, Any]] = []
    for (category, action), fields in sorted(groups.items()):
        detail: dict[str, Any] = {
            "type": DETAIL_TYPE,
            "datatypes": [category],
            "actions": [action],
            "purpose": purpose,
            "expires_at": grant.expires_at.isoformat().replace("+00:00", "Z"),
        }
        if fields is not None:
            detail["fields"] = fields
        if grant.retention is not None:
            detail["retention"] = grant.retention
        out.append(detail)
    return out


def _record(session: Session, grant: Grant, kind: str, by: str, detail: dict[str, Any]) -> None:
    """The change on the grant's own history, and on the audit log in the
    same transaction."""
    session.add(GrantChange(grant_id=grant.id, at=utcnow(), kind=kind, by=by, detail=detail))
    audit.consent_changed(session.connection(), grant, kind, by, detail)


def escrowed_keys(accesses: Iterable[Access]) -> set[str]:
    """The data keys a grant of ``accesses`` escrows while it lives, so
    that its vendor reads with the customer away: those of what it reads,
    field by field (vrm/records/sealing.py): a grant of ``profile.email``
    escrows the email's key alone. (A deposit while they are away is sealed
    for the customer, vrm/history/pending.py.)"""
    held = list(accesses)
    return {
        name
        for category in readable_categories(held)
        for name in sealing.keys_to_read(category, fields_of(held, category) or ())
    }


# What this server can open of each category while a grant escrows it whole.
_HELD_WORDS = {
    "profile": "your whole profile",
    "preferences": "all your preferences",
    # One key opens every event: the private ones too, though no vendor is
    # ever shown them (consent/policy.py, visible).
    "history": "your whole history (the events you marked private too, which the vendor "
    "never sees)",
}


def _held_words(accesses: list[Access]) -> list[str]:
    """What the server opens for ``accesses``, a phrase per category whose
    key a grant escrows whole and per field whose key it escrows alone
    (:func:`escrowed_keys`, resting on the same ``keys_to_read``)."""
    words: list[str] = []
    for category in readable_categories(accesses):
        fields = fields_of(accesses, category) or ()
        if sealing.keys_to_read(category, fields) == [category]:
            words.append(_HELD_WORDS[category])
        else:
            words.extend(Access(category, f, "read").words for f in fields)
    return words


def server_reads(accesses: Iterable[Access], *, customer_held: bool, ending: str) -> str:
    """What this server can read because of a grant of ``accesses`` (what
    it escrows, :func:`escrowed_keys`), in plain words for the customer,
    and that it cannot read the rest (docs/threat-model.md). ``ending``
    says when that stops: "while it lasts", "if you allow this"... A
    customer whose keys the server still holds is told so."""
    if not customer_held:
        return (
            "This server holds the keys to all your data: it can read it whether or not "
            "you share it."
        )
    named = _held_words(list(accesses))
    if not named:
        return (
            f"This server can read none of your data {ending}: it opens only while you "
            "are logged in."
        )
    listed = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return (
        f"To serve the vendor while you are away, this server can read {listed} {ending}. "
        "It cannot read the rest of your data, and once this ends it cannot read these "
        "either (unless another grant you keep shares them)."
    )


def hold_escrow(session: Session, vault: Vault, grant: Grant) -> None:
    """Escrow what ``grant`` reads (again, after it narrowed: what it no
    longer reads goes, with its escrow key version)."""
    vault.escrow(
        session,
        holder_id=grant.id,
        customer_id=grant.customer_id,
        keys=escrowed_keys(accesses_of(grant)),
    )


def escrow_live_grants(session: Session, vault: Vault, customer_id: str) -> None:
    """The customer's data keys changed at their log-in: their root key
    moved to them, or their documents were sealed by field
    (vrm.accounts.service.log_in, through vrm/hooks.py). Each live grant
    escrows what it reads, so that its vendor reads on while the customer
    is away, as for a grant made after. The grants' rows are locked first,
    so that a revocation at the same moment (which changes its row before
    it ends the escrow, revocation.revoke) is not undone here."""
    now = utcnow()
    grants = session.exec(
        select(Grant).where(col(Grant.customer_id) == customer_id).with_for_update()
    ).all()
    for grant in grants:
        if is_active(grant, now):
            hold_escrow(session, vault, grant)


def create(
    session: Session,
    vault: Vault,
    *,
    customer_id: str,
    vendor_id: str,
    request: DataRequest,
    allowed: list[Access],
    expires_at: datetime,
) -> Grant:
    """A new grant for what the customer allowed, which is never more than
    the vendor asked for. Its ``granted`` entry keeps the vendor as the
    customer saw it (:mod:`consent.grants.vendor_copy`). The caller commits."""
    allowed = within(allowed, request.accesses)
    if not allowed and not request.openid:
        raise ValidationFailed("Nothing was allowed; deny the request instead.")
    vendor = session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound("No such vendor.")
    now = utcnow()
    grant = Grant(
        id=secrets.token_hex(16),
        customer_id=customer_id,
        vendor_id=vendor_id,
        scopes=[a.scope for a in allowed],
        openid=request.openid,
        purpose=request.purpose,
        retention=request.retention,
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
    )
    if request.details is not None:
        grant.authorization_details = details_for(allowed, request.purpose, grant)
    session.add(grant)
    session.flush()
    # The customer is here, granting: their root key opens what to escrow.
    hold_escrow(session, vault, grant)
    _record(
        session,
        grant,
        "granted",
        "customer",
        {
            "requested": [a.scope for a in request.accesses],
            "granted": grant.scopes,
            "purpose": grant.purpose,
            "expires_at": grant.expires_at.isoformat(),
            "vendor": vendor_copy.record(vendor, now),
        },
    )
    grant.feed_seq = feed.grant_started(
        session, vendor_id=vendor_id, grant_id=grant.id, customer_id=customer_id
    )
    return grant


def find_covering(
    session: Session, *, customer_id: str, vendor_id: str, request: DataRequest
) -> Grant | None:
    """An active grant that already allows everything asked for, for the
    same purpose and at least as long as asked, given to the vendor as it
    shows itself now: after a change of name, logo, policy or contacts the
    customer is asked again rather than held to a consent given to what
    the vendor was."""
    now = utcnow()
    rows = session.exec(
        select(Grant).where(
            Grant.customer_id == customer_id,
            Grant.vendor_id == vendor_id,
            Grant.purpose == request.purpose,
            col(Grant.revoked_at).is_(None),
            Grant.expires_at > now,
        )
    ).all()
    for grant in sorted(rows, key=lambda g: g.created_at, reverse=True):
        if request.openid and not grant.openid:
            continue
        if request.expires_at is not None and grant.expires_at < request.expires_at:
            continue
        if within(request.accesses, accesses_of(grant)) != simplify(request.accesses):
            continue
        if not vendor_copy.changed_since_consent(session, grant):
            return grant
    return None


def get_for_customer(session: Session, customer_id: str, grant_id: str) -> Grant:
    grant = session.get(Grant, grant_id)
    if grant is None or grant.customer_id != customer_id:
        raise NotFound("No such grant.")
    return grant


def list_for_customer(session: Session, customer_id: str) -> list[Grant]:
    return list(
        session.exec(
            select(Grant)
            .where(Grant.customer_id == customer_id)
            .order_by(col(Grant.created_at).desc(), col(Grant.id))
        ).all()
    )


def changes(session: Session, grant_id: str) -> list[GrantChange]:
    return list(
        session.exec(
            select(GrantChange)
            .where(GrantChange.grant_id == grant_id)
            .order_by(col(GrantChange.seq))
        ).all()
    )


def default_expiry(request: DataRequest, now: datetime | None = None) -> datetime:
    now = now or utcnow()
    limit = now + timedelta(days=MAX_GRANT_DAYS)
    if request.expires_at is not None:
        return min(request.expires_at, limit)
    return now + timedelta(days=DEFAULT_GRANT_DAYS)
