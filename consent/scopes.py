"""What a vendor may ask for: data scopes, purposes and RFC 9396 details.

A scope names data and an action: ``<category>[.<field>]:<action>``
(``profile.email:read``, ``preferences:read``, ``history:read``,
``history:write``). Fields are the top-level fields of a document category
in the catalogue; ``history`` is read and written whole (its ``private``
events are never shared, whatever the grant). ``openid`` asks for an ID token.

The richer form is an ``authorization_details`` entry of our own type
(:data:`DETAIL_TYPE`) carrying datatypes, fields, actions, a purpose, an
expiry and a retention period. Both forms become the same list of
:class:`Access` values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from vrm.catalogue import CATEGORIES
from vrm.dbtypes import utcnow

OPENID = "openid"
# Scopes a vendor holds for itself (client credentials), naming no
# customer's data: the change feed of its own grants.
VENDOR_SCOPES = ("feed:read",)
DETAIL_TYPE = "urn:vrm:consent:data-access"
Action = Literal["read", "write"]

# OpenID Connect's standard scopes that ask for claims (Core 5.4), as the
# fields of our profile holding those claims (consent/oauth/userinfo.py
# names them back), so a generic OIDC client's ``openid profile email``
# asks for fields the consent page lists one by one.
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

_SCOPE = re.compile(r"^(?P<category>[a-z_]+)(?:\.(?P<field>[a-z_]+))?:(?P<action>[a-z]+)$")

# Which actions each category admits. Vendors deposit history (receipts);
# nothing else is writable by a vendor.
_ACTIONS: dict[str, tuple[Action, ...]] = {
    "profile": ("read",),
    "preferences": ("read",),
    "history": ("read", "write"),
}

# W3C Data Privacy Vocabulary purposes a vendor may state, in plain words.
PURPOSES: dict[str, str] = {
    "dpv:ServiceProvision": "to provide the service you asked for",
    "dpv:ServicePersonalisation": "to tailor their service to you",
    "dpv:Personalisation": "to personalise what they show you",
    "dpv:Marketing": "to market their products to you",
    "dpv:DirectMarketing": "to contact you with offers",
    "dpv:PersonalisedAdvertising": "to show you advertising chosen for you",
    "dpv:CustomerCare": "to look after you as a customer",
    "dpv:CustomerRelationshipManagement": "to manage their relationship with you",
    "dpv:CommunicationManagement": "to manage their communications with you",
    "dpv:ServiceOptimisation": "to improve their service",
    "dpv:ResearchAndDevelopment": "for research and development",
    "dpv:FraudPreventionAndDetection": "to prevent and detect fraud",
    "dpv:LegalCompliance": "to meet their legal obligations",
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


class DetailsError(ScopeError):
    """Bad ``authorization_details`` (RFC 9396 ``invalid_authorization_details``)."""


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

    def describe(self) -> str:
        what = (
            _CATEGORY_WORDS.get(self.category, self.category)
            if self.field is None
            else _FIELD_WORDS.get(self.field, self.field.replace("_", " "))
        )
        verb = "read" if self.action == "read" else "add to"
        return f"{verb} {what}"


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


def _sign_in_only(scope: str | None) -> bool:
    """An OpenID Connect request for standard claims only (``openid``
    with ``profile``, ``email``...), as a generic OIDC client sends it."""
    items = (scope or "").split()
    for item in items:
        try:
            parse_scope(item)
        except ScopeError:
            continue  # openid, a standard scope, or one ignored
        return False  # one of our data scopes: say why you want it
    return OPENID in items


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


def field_names(accesses: Iterable[Access]) -> set[str]:
    """What a vendor can hold under these accesses, one name per field, as
    the change log's tombstones name them (vrm/feed/changes.py):
    ``profile.email``; ``history`` for the events category as a whole."""
    names: set[str] = set()
    for access in accesses:
        if access.action != "read":
            continue
        spec = CATEGORIES[access.category]
        if spec.kind == "events":
            names.add(access.category)
        elif access.field is None:
            names.update(f"{access.category}.{f}" for f in spec.fields)
        else:
            names.add(f"{access.category}.{access.field}")
    return names


def check_purpose(term: str | None) -> str:
    if not term:
        raise ScopeError("a data request must state its purpose (a DPV term)")
    if term not in PURPOSES:
        raise ScopeError(f"unknown purpose '{term}'; use one of: {', '.join(sorted(PURPOSES))}")
    return term


_DURATION = re.compile(
    r"^P(?:(?P<y>\d{1,3})Y)?(?:(?P<m>\d{1,3})M)?(?:(?P<w>\d{1,4})W)?(?:(?P<d>\d{1,5})D)?$"
)


def parse_retention(text: str) -> timedelta:
    """An ISO 8601 duration in whole days, weeks, months (30 days) or years
    (365 days): ``P30D``, ``P6M``, ``P1Y``."""
    match = _DURATION.match(text)
    if match is None or not any(match.groupdict().values()):
        raise ScopeError(f"'{text}' is not an ISO 8601 duration such as P30D, P6M or P1Y")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return timedelta(days=parts["y"] * 365 + parts["m"] * 30 + parts["w"] * 7 + parts["d"])


Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class DataAccessDetail(BaseModel):
    """One RFC 9396 authorization detail of type :data:`DETAIL_TYPE`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["urn:vrm:consent:data-access"]
    datatypes: Annotated[list[Name], Field(min_length=1, max_length=len(CATEGORIES))]
    actions: Annotated[list[Action], Field(min_length=1, max_length=2)]
    fields: Annotated[list[Name], Field(max_length=64)] | None = None
    purpose: str
    expires_at: AwareDatetime | None = None
    retention: str | None = None

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str) -> str:
        return check_purpose(value)

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: str | None) -> str | None:
        if value is not None:
            parse_retention(value)
        return value

    def accesses(self) -> list[Access]:
        out: list[Access] = []
        for category in self.datatypes:
            for action in self.actions:
                if self.fields:
                    out.extend(parse_scope(f"{category}.{f}:{action}") for f in self.fields)
                else:
                    out.append(parse_scope(f"{category}:{action}"))
        return out


@dataclass(frozen=True)
class DataRequest:
    """What a vendor asked for, in one shape whichever form it used."""

    accesses: list[Access]
    openid: bool
    purpose: str
    expires_at: datetime | None
    retention: str | None
    details: list[DataAccessDetail] | None


def parse_authorization_details(raw: Any) -> list[DataAccessDetail]:
    """Strict validation: one of our detail type, no unknown members, known
    categories, fields and actions, one purpose for the whole request."""
    try:
        return _parse_details(raw)
    except DetailsError:
        raise
    except ScopeError as exc:
        raise DetailsError(str(exc)) from None


def _parse_details(raw: Any) -> list[DataAccessDetail]:
    if not isinstance(raw, list) or not raw:
        raise DetailsError("authorization_details must be a non-empty JSON array")
    details: list[DataAccessDetail] = []
    for i, item in enumerate(raw):
        try:
            detail = DataAccessDetail.model_validate(item)
            detail.accesses()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DetailsError(f"authorization_details[{i}] {where}: {first['msg']}") from None
        details.append(detail)
    if len({d.purpose for d in details}) > 1:
        raise ScopeError("every authorization detail of one request must state the same purpose")
    if len({d.expires_at for d in details}) > 1 or len({d.retention for d in details}) > 1:
        raise ScopeError(
            "every authorization detail of one request must share expiry and retention"
        )
    if details[0].expires_at is not None and details[0].expires_at <= utcnow():
        raise ScopeError("authorization_details expires_at is in the past")
    return details


def data_request(
    *, scope: str | None, purpose: str | None, authorization_details: Any | None
) -> DataRequest:
    """Combine scope, purpose and authorization_details into one request.

    Data scopes and authorization details may be combined; a purpose given
    both ways must agree. A request for data without a purpose is refused."""
    accesses, openid = parse_scopes(scope)
    details = None
    expires_at = retention = None
    if authorization_details is not None:
        details = parse_authorization_details(authorization_details)
        for d in details:
            accesses.extend(d.accesses())
        if purpose is not None and purpose != details[0].purpose:
            raise DetailsError("purpose and authorization_details state different purposes")
        purpose = details[0].purpose
        expires_at, retention = details[0].expires_at, details[0].retention
    accesses = simplify(accesses)
    if not accesses and not openid:
        raise ScopeError("ask for at least one scope this server knows")
    if purpose is None and details is None and _sign_in_only(scope):
        # A generic OIDC client states no purpose: signing the customer in
        # with their standard claims is the service they asked for, the
        # purpose ``openid`` alone gets below.
        purpose = "dpv:ServiceProvision"
    if accesses:
        purpose = check_purpose(purpose)
    elif purpose is not None:
        purpose = check_purpose(purpose)
    return DataRequest(
        accesses=accesses,
        openid=openid,
        purpose=purpose or "dpv:ServiceProvision",
        expires_at=expires_at,
        retention=retention,
        details=details,
    )


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
