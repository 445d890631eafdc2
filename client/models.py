"""The customer API's documents, as docs/api.md publishes them.

Written from the published API, not imported from the server: the SDK runs
on the customer's machine and must keep working against a server of
another version. So answers may carry members this SDK does not know yet
(``extra="allow"``: kept, not refused), and the value rules (lengths,
patterns, ranges) are the server's to check; a write that breaks one comes
back as a 422 :class:`client.VRMError` naming the field.
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

EventType = Literal["purchase", "return", "support_case", "feedback", "complaint", "visit"]
Label = Literal["gift", "not_for_me", "private"]
Channel = Literal["online", "store", "phone", "app", "email", "other"]
ContactChannel = Literal["email", "sms", "phone", "post", "push", "in_app"]
Frequency = Literal["never", "monthly", "weekly", "daily", "as_needed"]
FreeValue = str | bool | int | float

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Tagged(Model):
    """A document the server answers with an ``ETag``. Pass :attr:`etag`
    back as ``if_match`` on the next write: if the document changed in
    between, the write is refused (412) instead of overwriting it."""

    _etag: str | None = PrivateAttr(default=None)

    @property
    def etag(self) -> str | None:
        """The ``ETag`` this document was read or written with; None for a
        document built locally."""
        return self._etag


class Account(Model):
    id: str
    email: str
    created_at: datetime


class NewAccount(Account):
    """A new account. ``recovery_key`` is shown this once and kept nowhere
    on the server: with the password forgotten, only it opens the account
    (:meth:`client.Client.recover`). None when the server holds the keys."""

    recovery_key: str | None = None


class LoggedIn(Account):
    """The account, as a log-in answers. ``recovery_key`` is set only when
    this log-in handed the customer the keys the server held until then:
    shown this once and kept nowhere on the server, as at sign-up
    (:class:`NewAccount`). None on every other log-in."""

    recovery_key: str | None = None


class Recovered(Model):
    recovery_key: str


class LoginSession(Model):
    """One live session; ``id`` names it to end it and is unrelated to its
    cookie."""

    id: str
    device: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool


class PostalAddress(Model):
    street_address: str | None = None
    locality: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Profile(Tagged):
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    phone: str | None = None
    postal_address: PostalAddress | None = None
    birth_date: date | None = None
    language: str | None = None


class QuietHours(Model):
    start: time
    end: time


class Communication(Model):
    channels: list[ContactChannel] = Field(default_factory=list)
    frequency: Frequency | None = None
    quiet_hours: QuietHours | None = None
    language: str | None = None


class Budget(Model):
    amount: Decimal
    currency: str


class Shopping(Model):
    sizes: dict[str, str] = Field(default_factory=dict)
    brands: list[str] = Field(default_factory=list)
    interests: list[str] = Field(default_factory=list)
    budget: Budget | None = None


class Preferences(Tagged):
    communication: Communication | None = None
    shopping: Shopping | None = None
    dietary: list[str] = Field(default_factory=list)
    accessibility: list[str] = Field(default_factory=list)
    free: dict[str, FreeValue] = Field(default_factory=dict)


class Item(Model):
    name: str
    sku: str | None = None
    quantity: int = 1
    amount: Decimal | None = None
    labels: list[Label] = Field(default_factory=list)


class NewEvent(Model):
    """A history event as the customer writes it."""

    vendor: str
    type: EventType
    occurred_at: datetime
    items: list[Item] = Field(default_factory=list)
    amount: Decimal | None = None
    currency: str | None = None
    channel: Channel | None = None
    rating: int | None = None
    notes: str | None = None
    labels: list[Label] = Field(default_factory=list)


class Event(NewEvent, Tagged):
    """A stored history event. ``source`` is ``customer``, or
    ``vendor:<client_id>`` for one a vendor deposited with your consent."""

    id: str
    source: str
    created_at: datetime
    updated_at: datetime


class Page(Model, Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last."""

    items: list[T]
    next_cursor: str | None


class VendorSummary(Model):
    id: str
    name: str
    logo_uri: str | None
    policy_uri: str | None
    contacts: list[str]


class VendorAsConsented(VendorSummary):
    """The vendor as you saw it on the consent page when you said yes."""

    recorded_at: datetime
    recorded_at_consent: bool


class GrantChange(Model):
    """``granted``, ``narrowed``, ``shortened`` or ``revoked``, with what
    changed in ``detail``."""

    at: datetime
    kind: str
    by: str
    detail: dict[str, Any]


class Grant(Model):
    """What you allowed a vendor. ``status`` is ``active``, ``revoked`` or
    ``expired``; ``described`` says ``scopes`` in plain words."""

    id: str
    vendor: VendorAsConsented
    vendor_changed: list[str]
    vendor_now: VendorSummary | None
    status: str
    scopes: list[str]
    described: list[str]
    openid: bool
    purpose: str
    purpose_described: str
    legal_basis: str
    retention: str | None
    authorization_details: list[dict[str, Any]] | None
    created_at: datetime
    updated_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    changes: list[GrantChange]


class LogEntry(Model):
    """An entry of the audit log about you (docs/audit.md lists the
    ``entry`` members of each ``type``)."""

    index: int
    entry: dict[str, Any]


class AuditReceipt(Model):
    """An entry with the RFC 9162 inclusion proof (base64 hashes) in the
    signed ``checkpoint``, and the ``salt`` and ``personal`` values that
    open its commitment: proof, to anyone, of what the operator logged."""

    index: int
    entry: str
    leaf_hash: str
    size: int
    proof: list[str]
    checkpoint: str
    salt: str
    personal: dict[str, Any]


class _Items(Model, Generic[T]):
    items: list[T]
