"""Grants and log entries in the customer's words: times, what a vendor may
read or read, why. Every phrase about data comes from the access policy
(``Access.words``, ``Access.describe``) and every purpose from consent's
list (``consent.scopes.PURPOSES``), as on the consent page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from consent.policy import ScopeError, parse_scope
from consent.scopes import PURPOSES


def when(moment: datetime | str | None) -> str:
    """``7 December 2026, 13:20 UTC``; ``never`` for None."""
    if moment is None:
        return "never"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def day(moment: date) -> str:
    """``7 December 2026``."""
    return f"{moment.day} {moment:%B %Y}"


def purpose(term: str) -> str:
    return PURPOSES.get(term, term)


def data(names: Iterable[str]) -> list[str]:
    """What fields a log entry names (``profile.email``, ``history``), in
    the access policy's words; a name it does not know, as it is."""
    out = []
    for name in names:
        try:
            out.append(parse_scope(f"{name}:read").words)
        except ScopeError:
            out.append(name)
    return out


def scopes(names: Iterable[str]) -> list[str]:
    """What scopes allow (``profile.email:read``), in the policy's words."""
    out = []
    for name in names:
        try:
            out.append(parse_scope(name).describe())
        except ScopeError:
            out.append(name)
    return out


def link(uri: str | None) -> str | None:
    """A vendor's own link, if it is a web address (never ``javascript:``)."""
    if uri and urlsplit(uri).scheme in ("http", "https"):
        return uri
    return None


# Who or what ended a grant (``Grant.revoked_by``, a consent entry's ``by``).
ENDED_BY = {
    "customer": "you",
    "expiry": "its end date",
    "account_deleted": "the deletion of your account",
    "operator": "the store's operator, who disabled the vendor",
    "vendor": "the vendor, which left this store",
}


def ended_by(by: str | None) -> str:
    return ENDED_BY.get(by or "", by or "")


def entry(entry: Mapping[str, Any], vendors: Mapping[str, str]) -> dict[str, Any]:
    """A log entry as the access page shows it: ``who`` (a vendor's name,
    or ``You``), ``what`` (a sentence), ``fields`` (in words), ``why`` (the
    purpose in words, or ``""``) and ``when``."""
    kind = str(entry.get("type", ""))
    vendor_id = entry.get("vendor")
    name = vendors.get(vendor_id, "A vendor") if vendor_id else "The store"
    fields: list[str] = []
    who = name
    if kind == "data.read":
        what = "read your data" + (
            " (unchanged since its last read)" if entry.get("not_modified") else ""
        )
        fields = data(entry.get("fields", ()))
    elif kind == "data.deposited":
        what = "added to your history"
        fields = data(entry.get("fields", ()))
    elif kind.startswith("consent."):
        what, who = _consent(kind, entry, name)
    elif kind in ("token.issued", "token.refreshed"):
        what = "was given a key to read what you allowed, until " + when(entry.get("expires_at"))
    elif kind in ("token.revoked", "token.family_revoked"):
        what = (
            "gave up a key to your data"
            if entry.get("reason") == "vendor"
            else ("lost its keys to your data: one was used twice, which may mean it was stolen")
        )
    elif kind == "token.reuse_detected":
        what = "used a key twice, so the store withdrew it"
    elif kind == "account.exported":
        who, what = "You", "exported all your data"
    elif kind == "account.erased":
        who, what = "You", "deleted your account"
    elif kind == "key.rotated":
        who, what = "The store", "re-sealed your data under a new server key"
    elif kind in ("notice.attempted", "notice.acknowledged"):
        what = (
            "confirmed it was told that your consent ended or shrank"
            if kind == "notice.acknowledged"
            else "was sent word that your consent ended or shrank"
        )
    else:
        what = kind
    why = purpose(entry["purpose"]) if entry.get("purpose") else ""
    return {"who": who, "what": what, "fields": fields, "why": why, "when": when(entry.get("at"))}


def _consent(kind: str, entry: Mapping[str, Any], name: str) -> tuple[str, str]:
    by = str(entry.get("by", "customer"))
    who = "You" if by == "customer" else name
    allowed = "; ".join(scopes(entry.get("scopes", ()))) or "nothing but who you are"
    if kind == "consent.granted":
        return f"allowed {name} to {allowed}, until {when(entry.get('expires_at'))}", "You"
    if kind == "consent.narrowed":
        gone = sorted(set(entry.get("from_scopes", ())) - set(entry.get("scopes", ())))
        return f"took back from {name}: {'; '.join(scopes(gone))}", who
    if kind == "consent.shortened":
        return (
            f"brought the end of {name}'s access forward from "
            f"{when(entry.get('from_expires_at'))} to {when(entry.get('expires_at'))}",
            who,
        )
    if kind == "consent.revoked":
        if by == "customer":
            return f"withdrew all of {name}'s access", "You"
        return f"{name}'s access was ended by {ended_by(by)}", "The store"
    if kind == "consent.expired":
        return f"{name}'s access ended on its end date", "The store"
    if kind == "consent.denied":
        return f"turned down {name}'s request", "You"
    return kind, who
