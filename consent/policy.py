"""Who may see what: the one access policy.

Every path that hands a vendor the customer's data asks this module, and
nothing else decides: the data API (vrm/vendor_api/projection.py, reads.py),
the feed (vrm/vendor_api/feed.py, events.py), deposits' repeats
(vrm/vendor_api/deposit.py), userinfo (consent/oauth/userinfo.py), the
tombstones a narrowing leaves (consent/grants/service.py) and the consent
page, which shows what a grant would give in :meth:`Access.describe`'s words.

- The grammar: a scope names data and an action,
  ``<category>[.<field>]:<action>`` (``profile.email:read``,
  ``preferences:read``, ``history:read``, ``history:write``). Fields are the
  top-level fields of a document category in the catalogue; ``history`` is
  read and written whole. ``openid`` asks for an ID token.
- Containment (:meth:`Access.covers`, :func:`within`): a whole category
  covers each of its fields, never the other way round.
- A token may do what its own scope and its grant's current scope both allow
  (:func:`effective`), so narrowing a grant narrows its tokens at once.
- What a set of accesses sees of a category (:func:`fields_of`), of the
  profile as OIDC claims (:func:`claims`), and as the names a tombstone lists
  (:func:`field_names`): all three from the one :func:`fields_of`.
- The private-label rule (:func:`visible`): an event or item the customer
  labelled ``private`` is never shown to a vendor, whatever the grant.

RFC 9396 authorization details, purposes and retention, what a vendor may
*ask* for, are read in consent/scopes.py into the :class:`Access` values here.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from vrm.catalogue import CATEGORIES
from vrm.catalogue.history import kept_private

OPENID = "openid"
# Scopes a vendor holds for itself (client credentials), naming no
# customer's data: the change feed of its own grants.
VENDOR_SCOPES = ("feed:read",)
# An auditor's (client credentials): the audit log, never customer data.
AUDITOR_SCOPES = ("audit:read",)
# The store's own first-party client's (`vrm-me`, device flow): the
# customer's whole account through the customer API, as the session cookie
# gives it. No vendor may ask for it (consent/oauth/first_party.py).
FIRST_PARTY_SCOPES = ("account",)
# What each kind of client may hold for itself (consent.vendors.models.Vendor.role).
CLIENT_SCOPES: dict[str, tuple[str, ...]] = {
    "vendor": VENDOR_SCOPES,
    "auditor": AUDITOR_SCOPES,
    "first_party": FIRST_PARTY_SCOPES,
}
Action = Literal["read", "write"]

# OpenID Connect's standard scopes that ask for claims (Core 5.4), as the
# fields of our profile holding those claims (:data:`CLAIMS` names them
# back), so a generic OIDC client's ``openid profile email`` asks for fields
# the consent page lists one by one.
OIDC_SCOPES: dict[str, tuple[str, ...]] = {
    "profile": (
        "profile.given_name:read",
        "profile.family_name:read",
        "profile.birth_date:read",
        "profile.language:read",
    ),
    "email": ("profile.email:read",),
    "phone": ("profile.phone:read",),
    "address": ("profile.postal_address:read",),
}

# Our profile field -> the OIDC standard claim carrying it (Core 5.1).
CLAIMS = {
    "given_name": "given_name",
    "family_name": "family_name",
    "email": "email",
    "phone": "phone_number",
    "postal_address": "address",
    "birth_date": "birthdate",
    "language": "locale",
}

_SCOPE = re.compile(r"^(?P<category>[a-z_]+)(?:\.(?P<field>[a-z_]+))?:(?P<action>[a-z]+)$")

# Which actions each category admits. Vendors deposit history (receipts);
# nothing else is writable by a vendor.
_ACTIONS: dict[str, tuple[Action, ...]] = {
    "profile": ("read",),
    "preferences": ("read",),
    "history": ("read", "write"),
}

_FIELD_WORDS: dict[str, str] = {
    "given_name": "your given name",
    "family_name": "your family name",
    "email": "your contact email address",
    "phone": "your phone number",
    "postal_address": "your postal address",
    "birth_date": "your date of birth",
    "language": "your language",
    "communication": "how and when you like to be contacted",
    "shopping": "your sizes, brands, interests and budget",
    "dietary": "your dietary needs",
    "accessibility": "your accessibility needs",
    "free": "your other preferences",
}

_CATEGORY_WORDS: dict[str, str] = {
    "profile": "your whole profile",
    "preferences": "all your preferences",
    "history": "your purchase and interaction history (never events you marked private)",
}


class ScopeError(ValueError):
    """A scope, purpose or authorization detail that is not ours."""


@dataclass(frozen=True, order=True)
class Access:
    category: str
    field: str | None
    action: Action

    @property
    def scope(self) -> str:
        name = self.category if self.field is None else f"{self.category}.{self.field}"
        return f"{name}:{self.action}"

    def covers(self, other: Access) -> bool:
        return (
            self.category == other.category
            and self.action == other.action
            and (self.field is None or self.field == other.field)
        )

    @property
    def words(self) -> str:
        """What it gives, in words: ``your contact email address``."""
        if self.field is None:
            return _CATEGORY_WORDS.get(self.category, self.category)
        return _FIELD_WORDS.get(self.field, self.field.replace("_", " "))

    def describe(self) -> str:
        verb = "read" if self.action == "read" else "add to"
        return f"{verb} {self.words}"


def parse_scope(text: str) -> Access:
    match = _SCOPE.match(text)
    if match is None:
        raise ScopeError(f"'{text}' is not a scope of the form <category>[.<field>]:<action>")
    category, field, action = match["category"], match["field"], match["action"]
    cat = CATEGORIES.get(category)
    if cat is None:
        raise ScopeError(f"unknown data category '{category}'")
    if action not in _ACTIONS[category]:
        raise ScopeError(f"'{action}' is not an action on '{category}'")
    if field is not None:
        if cat.kind != "document" or action != "read":
            raise ScopeError(f"'{category}' is not shared field by field")
        if field not in cat.fields:
            raise ScopeError(f"unknown field '{field}' of '{category}'")
    return Access(category, field, action)


def simplify(accesses: list[Access]) -> list[Access]:
    """Sorted, without duplicates and without fields a whole category covers."""
    unique = set(accesses)
    kept = {a for a in unique if not any(b != a and b.covers(a) for b in unique)}
    return sorted(kept, key=lambda a: (a.category, a.action, a.field or ""))


def parse_scopes(text: str | None) -> tuple[list[Access], bool]:
    """The data accesses of a space-separated scope string, and whether
    ``openid`` was asked for. OIDC's standard scopes become the profile
    fields they name (:data:`OIDC_SCOPES`); a scope this server does not
    know is left out, as OIDC Core 3.1.2.1 says (a client learns what it
    got from the ``scope`` of the token response, RFC 6749 5.1)."""
    accesses: list[Access] = []
    openid = False
    for item in (text or "").split():
        if item == OPENID:
            openid = True
        elif item in OIDC_SCOPES:
            accesses.extend(parse_scope(s) for s in OIDC_SCOPES[item])
        else:
            try:
                accesses.append(parse_scope(item))
            except ScopeError:
                continue
    return simplify(accesses), openid


def scope_string(accesses: list[Access], openid: bool) -> str:
    items = ([OPENID] if openid else []) + [a.scope for a in simplify(accesses)]
    return " ".join(items)


def within(requested: list[Access], allowed: list[Access]) -> list[Access]:
    """The intersection of two sets of accesses: what a token may still do
    under a grant that was narrowed (a whole-category request cut down to the
    fields still allowed), or what of a request a customer allowed."""
    out: list[Access] = []
    for r in requested:
        if any(a.covers(r) for a in allowed):
            out.append(r)
        else:
            out.extend(a for a in allowed if r.covers(a))
    return simplify(out)


@lru_cache(maxsize=4096)
def effective(
    token_scope: str, grant_scopes: tuple[str, ...], grant_openid: bool
) -> tuple[tuple[Access, ...], bool, str]:
    """What a token may do with customer data: its own scope, cut down to
    its grant's current scope (a narrowed grant narrows every token at
    once), and that as a scope string. Parsing, intersecting and writing
    the scopes cost as much as the database on a vendor read
    (docs/performance.md#the-drivers-cursor-and-decoding); the answer
    depends on the two scope strings and the grant's openid only."""
    accesses, openid = parse_scopes(token_scope)
    allowed = [parse_scope(s) for s in grant_scopes]
    kept = within(accesses, allowed)
    openid = openid and grant_openid
    return tuple(kept), openid, scope_string(kept, openid)


def fields_of(accesses: Iterable[Access], category: str) -> tuple[str, ...] | None:
    """The fields of a category the accesses may read, in catalogue order;
    None when the category is not readable at all. A field-level access
    gives that field only; a whole-category access gives every field."""
    reads = [a for a in accesses if a.category == category and a.action == "read"]
    if not reads:
        return None
    catalogue_fields = CATEGORIES[category].fields
    if any(a.field is None for a in reads):
        return catalogue_fields
    wanted = {a.field for a in reads}
    return tuple(f for f in catalogue_fields if f in wanted)


def readable_categories(accesses: Iterable[Access]) -> list[str]:
    """The categories the accesses may read, in catalogue order."""
    held = list(accesses)
    return [c for c in CATEGORIES if fields_of(held, c) is not None]


def may_write(accesses: Iterable[Access], category: str) -> bool:
    """Whether the accesses may add to a category (deposit history events)."""
    return any(a.covers(Access(category, None, "write")) for a in accesses)


def field_names(accesses: Iterable[Access]) -> set[str]:
    """What a vendor can hold under these accesses, one name per field, as
    the data API's access events and the change log's tombstones name them:
    ``profile.email``; ``history`` for the events category as a whole."""
    held = list(accesses)
    names: set[str] = set()
    for category in readable_categories(held):
        if CATEGORIES[category].kind == "events":
            names.add(category)
        else:
            names.update(f"{category}.{f}" for f in fields_of(held, category) or ())
    return names


def claims(accesses: Iterable[Access]) -> dict[str, str]:
    """The OIDC standard claims userinfo may give (Core 5.3.2), each under
    the profile field it comes from, sorted by field (userinfo's order)."""
    fields = fields_of(accesses, "profile") or ()
    return {f: CLAIMS[f] for f in sorted(fields) if f in CLAIMS}


def visible(labels: Collection[str]) -> bool:
    """The private-label rule: whether a vendor may see an event or an item
    with these labels, whatever its grant. A private item is cut out of an
    event a vendor sees; a private event is not shown at all (what a vendor
    that saw it before hears instead: vrm/vendor_api/events.py). The label's
    meaning is the catalogue's (vrm/catalogue/history.py, :func:`kept_private`),
    where the store, which may not import this module, reads it too."""
    return not kept_private(labels)


def all_scopes() -> list[str]:
    """Every data scope, for the discovery document: OIDC's standard
    scopes we read as fields first, then ours."""
    out: list[str] = list(OIDC_SCOPES)
    for name, cat in CATEGORIES.items():
        for action in _ACTIONS[name]:
            out.append(f"{name}:{action}")
            if cat.kind == "document" and action == "read":
                out.extend(f"{name}.{f}:read" for f in cat.fields)
    return out
