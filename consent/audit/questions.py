"""The questions auditors ask, answered from the log's entries, each answer
naming the entries it rests on so the auditor can check it against the
log (docs/audit.md#the-auditors-questions).

The rules are those of the offline verifier (consent/audit/bundle.py,
:class:`~consent.audit.bundle.Grants`): a read falls inside a grant given
before it, not ended before it, for its purpose and fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consent.audit.bundle import ENDED, GIVEN, Grants, VerifyError
from consent.policy import field_names, parse_scope

Entries = Iterable[tuple[int, dict[str, Any]]]
WITHDRAWN = ENDED | {"consent.narrowed"}


@dataclass
class HeldGrant:
    grant: str
    customer: str
    purpose: str
    scopes: list[str]
    expires_at: str
    # The consent entries that made it what it was at the time asked.
    entries: list[int] = field(default_factory=list)


def grants_held(entries: Entries, at: datetime) -> list[HeldGrant]:
    """The grants the entries show in force at ``at``: given (and maybe
    narrowed or shortened) before it, neither revoked nor expired by it."""
    held: dict[str, HeldGrant] = {}
    for index, entry in entries:
        if datetime.fromisoformat(entry["at"]) > at:
            break
        kind = entry["type"]
        if kind in GIVEN:
            grant = held.get(entry["grant"])
            if grant is None:
                grant = held[entry["grant"]] = HeldGrant(
                    entry["grant"], entry["customer"], entry["purpose"], [], ""
                )
            grant.scopes, grant.expires_at = list(entry["scopes"]), entry["expires_at"]
            grant.entries.append(index)
        elif kind in ENDED:
            held.pop(entry["grant"], None)
    return [g for g in held.values() if datetime.fromisoformat(g.expires_at) > at]


@dataclass
class Limitation:
    """Every access entry checked against its grant; the violations must
    be none."""

    checked: list[int] = field(default_factory=list)
    # Accesses under grants given before the entries asked about.
    unchecked: list[int] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)


def purpose_limitation(entries: Entries) -> Limitation:
    """Any read or deposit outside a valid grant, its purpose or its fields."""
    grants = Grants()
    answer = Limitation()
    for index, entry in entries:
        try:
            seen = grants.see(index, entry)
        except VerifyError as exc:
            answer.checked.append(index)
            answer.violations.append({"index": index, "problem": str(exc)})
            continue
        if seen == 1:
            answer.checked.append(index)
        elif seen == 0:
            answer.unchecked.append(index)
    return answer


@dataclass
class Withdrawal:
    """A grant ended or narrowed, and the vendor's reads of what it lost
    after it (must be none)."""

    index: int
    type: str
    grant: str
    vendor: str
    at: str
    reads_after: list[int] = field(default_factory=list)
    # The time until the vendor acknowledged its revocation notice
    # (consent/notices): None while it has not, or takes no notices.
    acknowledged_after_seconds: float | None = None


# What a notice's reason says was withdrawn (an erasure revokes each grant).
_NOTICE_OF = {
    "revoked": "consent.revoked",
    "account_deleted": "consent.revoked",
    "narrowed": "consent.narrowed",
    "expired": "consent.expired",
}


def _seconds_between(earlier: str, later: str) -> float:
    start = datetime.fromisoformat(earlier.replace("Z", "+00:00"))
    end = datetime.fromisoformat(later.replace("Z", "+00:00"))
    return (end - start).total_seconds()


def withdrawals(entries: Entries) -> list[Withdrawal]:
    """Every withdrawal (revoked, expired, narrowed) with each later read
    of what it withdrew: all the grant gave, or for a narrowing the fields
    it took away (by the consent policy's rule, consent.policy.field_names);
    and how long the vendor took to acknowledge its notice of it: each
    ``notice.acknowledged`` answers the grant's earliest withdrawal of its
    kind not yet answered."""
    found: list[Withdrawal] = []
    # Each grant's withdrawals so far, with what each took (None: all).
    lost: dict[str, list[tuple[Withdrawal, set[str] | None]]] = {}
    for index, entry in entries:
        kind = entry["type"]
        if kind in WITHDRAWN:
            withdrawal = Withdrawal(index, kind, entry["grant"], entry["vendor"], entry["at"])
            found.append(withdrawal)
            removed = None
            if kind == "consent.narrowed":
                removed = _fields(entry["from_scopes"]) - _fields(entry["scopes"])
            lost.setdefault(entry["grant"], []).append((withdrawal, removed))
        elif kind == "data.read":
            for withdrawal, removed in lost.get(entry["grant"], ()):
                if removed is None or removed & set(entry["fields"]):
                    withdrawal.reads_after.append(index)
        elif kind == "notice.acknowledged":
            answered = _NOTICE_OF.get(entry["reason"])
            for withdrawal, _ in lost.get(entry["grant"], ()):
                if withdrawal.type == answered and withdrawal.acknowledged_after_seconds is None:
                    seconds = _seconds_between(withdrawal.at, entry["at"])
                    withdrawal.acknowledged_after_seconds = seconds
                    break
    return found


def _fields(scopes: list[str]) -> set[str]:
    return field_names(parse_scope(s) for s in scopes if s != "openid")
