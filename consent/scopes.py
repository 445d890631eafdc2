"""What a vendor may ask for: a purpose, a retention period and RFC 9396
authorization details, beside its scopes.

The richer form of a request is an ``authorization_details`` entry of our
own type (:data:`DETAIL_TYPE`) carrying datatypes, fields, actions, a
purpose, an expiry and a retention period. Scopes and details both become
the same list of :class:`consent.policy.Access` values; what those may see
is decided in consent/policy.py alone.
"""

from __future__ import annotations

import re
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

from consent.policy import (
    FIRST_PARTY_SCOPES,
    OPENID,
    Access,
    Action,
    ScopeError,
    parse_scope,
    parse_scopes,
    simplify,
)
from vrm.catalogue import CATEGORIES
from vrm.dbtypes import utcnow

FIRST_PARTY_SCOPES_SET = frozenset(FIRST_PARTY_SCOPES)

DETAIL_TYPE = "urn:vrm:consent:data-access"

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


class DetailsError(ScopeError):
    """Bad ``authorization_details`` (RFC 9396 ``invalid_authorization_details``)."""


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
    if scope and not FIRST_PARTY_SCOPES_SET.isdisjoint(scope.split()):
        # The store's own client's, never a vendor's (consent/oauth/first_party.py).
        raise ScopeError("account is the store's own client's scope; vendors cannot ask for it")
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
