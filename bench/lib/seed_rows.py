"""One seeded customer's rows, as the services would write them (seed.py).

:class:`Customers` builds, for customer number ``n``, the rows of every
table that sign-up, writing the profile and preferences, adding history
events and granting vendors would write, as plain dicts keyed by column
name: the writers (seed.py) copy them in bulk. Every value is the
product's: keys from the vault (a root key in the key store, data keys
wrapped by it), every personal value sealed by the vault, documents by the
records service's own sealing, the email's blind index by the accounts
service's, a grant's scopes parsed by the consent policy; the defaults of
the other columns come from the models' fields (:func:`new_row`).

What is not the services' own: the customer's password hash is one hash
reused (hashing dominated seeding before), and history events come from a
pool of plaintexts made once per process through the product's models
(validated, flagged ``shared`` by the catalogue's own rule); each copy is
sealed anew for its customer and event id, with a fresh nonce, so every
ciphertext is distinct and opens only in its place. A grant's ``granted``
entry is written as grants.create writes it, the vendor copy by
consent/grants/vendor_copy.py; no audit log entries are written (the
log's Merkle tree is appended by its own code alone), so the seeded
customers' consent has no entries on it.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlmodel import Session, SQLModel

from bench.lib import people
from consent.grants import vendor_copy
from consent.grants.models import Grant, GrantChange
from consent.policy import parse_scopes
from consent.vendors.models import Vendor
from vrm.accounts.models import Customer
from vrm.accounts.service import _email_key
from vrm.catalogue import ACCOUNT
from vrm.catalogue.history import HistoryEvent, kept_private
from vrm.catalogue.preferences import Preferences
from vrm.catalogue.profile import Profile
from vrm.feed.models import DataChange, FeedNotice
from vrm.history.models import HistoryRecord, StoredEvent
from vrm.keys.models import DataKey
from vrm.keys.service import Vault
from vrm.records.models import DocumentRecord
from vrm.records.service import seal_document

SCOPES = "profile.email:read preferences:read history:read"
# Distinct event plaintexts per process: enough that a customer's twenty
# differ, and a vendor's page is not one cached plaintext.
EVENT_POOL = 1024

# Tables in the order their rows are written: parents before children.
TABLES: tuple[str, ...] = tuple(
    str(model.__tablename__)
    for model in (
        Customer,
        DataKey,
        DocumentRecord,
        HistoryRecord,
        DataChange,
        Grant,
        GrantChange,
        FeedNotice,
    )
)

Rows = dict[str, list[dict[str, Any]]]


def row_of(model: SQLModel) -> dict[str, Any]:
    """A model's row, column by column, its defaults included."""
    table = model.__table__  # type: ignore[attr-defined]
    return {c.name: getattr(model, c.key) for c in table.columns}


def new_row(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """The row ``model(**values)`` would write, its fields' defaults (and
    default factories) applied as pydantic applies them, without building
    the model: that cost a third of a customer's time."""
    fixed, made = _defaults(model)
    row = {**fixed, **{name: field.get_default(call_default_factory=True) for name, field in made}}
    row.update(values)
    if len(row) != len(_columns(model)):
        columns = set(_columns(model))
        wrong = sorted(columns ^ set(row))
        raise TypeError(f"{model.__name__}: {', '.join(wrong)} missing, or not columns")
    return row


@cache
def _columns(model: type[SQLModel]) -> tuple[str, ...]:
    return tuple(c.key for c in model.__table__.columns)  # type: ignore[attr-defined]


@cache
def _defaults(model: type[SQLModel]) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """A model's columns' defaults: the values given once (immutable ones:
    each row shares them), and the fields whose default is made anew."""
    fixed: dict[str, Any] = {}
    made: list[tuple[str, Any]] = []
    for name in _columns(model):
        field = model.model_fields[name]
        if field.is_required():
            continue
        if field.default_factory is not None or not isinstance(
            field.default, str | int | float | bool | bytes | type(None)
        ):
            made.append((name, field))
        else:
            fixed[name] = field.default
    return fixed, tuple(made)


def grants_of(n: int, vendors: Sequence[tuple[str, float]]) -> list[str]:
    """The vendors customer ``n`` grants: each of ``vendors`` (id, share)
    is granted by its share of the customers, the same ones on every run
    (a smaller share's customers are within a larger one's)."""
    return [vendor_id for vendor_id, share in vendors if n % 1000 < share * 1000]


def positions(events: int, grants: int) -> int:
    """The change-log positions one customer takes: a document each, an
    event each, a grant each."""
    return 2 + events + grants


class Customers:
    def __init__(
        self,
        vault: Vault,
        password_hash: str,
        events: int,
        seed: int,
        vendors: Iterable[Vendor],
    ) -> None:
        self.vault = vault
        self.vendors = {v.id: v for v in vendors}
        self.password_hash = password_hash
        self.events = events
        self.accesses = [a.scope for a in parse_scopes(SCOPES)[0]]
        rng = random.Random(seed)
        self.rng = rng
        self.pool = [_event_plaintext(rng) for _ in range(EVENT_POOL if events else 0)]
        # Where the vault adds data keys (create_customer_keys); never
        # flushed: its rows are taken out after each customer.
        self.session = Session()

    def rows(self, n: int, vendor_ids: Iterable[str], seq: int, now: datetime, into: Rows) -> int:
        """Add customer ``n``'s rows to ``into``, their change-log
        positions from ``seq + 1``; the last position taken."""
        vault, session = self.vault, self.session
        cid = uuid.uuid4().hex
        vault.create_customer_keys(session, cid)
        into["data_key"] += [row_of(key) for key in session.new]
        email = f"c{n}@bench.example"
        sealed = vault.seal(
            session, customer_id=cid, category=ACCOUNT, record_id=cid, plaintext=email.encode()
        )
        into["customer"].append(
            new_row(
                Customer,
                id=cid,
                email_index=_email_key(vault, email),
                email_ct=sealed.ciphertext,
                key_version=sealed.key_version,
                password_hash=self.password_hash,
                created_at=now,
                password_changed_at=now,
            )
        )
        changes = into["data_change"]
        for category, doc in _documents(n).items():
            key_version, ciphertext = seal_document(
                session, vault, cid, category, doc.model_dump_json(exclude_none=True).encode()
            )
            into["document_record"].append(
                {
                    "customer_id": cid,
                    "category": category,
                    "key_version": key_version,
                    "ciphertext": ciphertext,
                    "revision": 1,
                    "updated_at": now,
                }
            )
            seq += 1
            changes.append(_change(cid, category, category, seq, now))
        history = into["history_record"]
        for plaintext in self.rng.choices(self.pool, k=self.events):
            event_id = uuid.uuid4().hex
            sealed = vault.seal(
                session,
                customer_id=cid,
                category="history",
                record_id=event_id,
                plaintext=plaintext,
            )
            history.append(
                {
                    "id": event_id,
                    "customer_id": cid,
                    "key_version": sealed.key_version,
                    "ciphertext": sealed.ciphertext,
                    "revision": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            seq += 1
            changes.append(_change(cid, "history", event_id, seq, now))
        for vendor_id in vendor_ids:
            seq += 1
            expires_at = now + timedelta(days=365)
            grant = new_row(
                Grant,
                id=secrets.token_hex(16),
                customer_id=cid,
                vendor_id=vendor_id,
                scopes=self.accesses,
                purpose="dpv:ServiceProvision",
                created_at=now,
                updated_at=now,
                expires_at=expires_at,
                feed_seq=seq,
            )
            into["consent_grant"].append(grant)
            into["grant_change"].append(
                {
                    "grant_id": grant["id"],
                    "at": now,
                    "kind": "granted",
                    "by": "customer",
                    # As grants.create writes it, with the vendor as the
                    # customer saw it (consent/grants/vendor_copy.py).
                    "detail": {
                        "requested": grant["scopes"],
                        "granted": grant["scopes"],
                        "purpose": grant["purpose"],
                        "expires_at": expires_at.isoformat(),
                        "vendor": vendor_copy.record(self.vendors[vendor_id], now),
                    },
                }
            )
            into["feed_notice"].append(
                new_row(
                    FeedNotice,
                    seq=seq,
                    vendor_id=vendor_id,
                    grant_id=grant["id"],
                    customer_id=cid,
                    kind="started",
                    at=now,
                )
            )
        session.expunge_all()
        return seq


def empty_rows() -> Rows:
    return {table: [] for table in TABLES}


def _event_plaintext(rng: random.Random) -> bytes:
    # About 500 bytes: items, amounts, notes, a label now and then.
    event = HistoryEvent.model_validate(people.event(rng))
    stored = StoredEvent(
        **event.model_dump(), source="customer", shared=not kept_private(event.labels)
    )
    return stored.model_dump_json(exclude_none=True).encode()


def _documents(n: int) -> dict[str, Profile | Preferences]:
    return {
        "profile": Profile(
            given_name=f"Given{n}",
            family_name=f"Family{n}",
            email=f"contact{n}@bench.example",
            phone=f"+351 91{n:07d}",
            language="pt-PT",
        ),
        "preferences": Preferences(
            dietary=["vegetarian"],
            accessibility=["large print"],
            free={"team": f"t{n % 50}"},
        ),
    }


def _change(cid: str, category: str, record_id: str, seq: int, now: datetime) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "category": category,
        "record_id": record_id,
        "seq": seq,
        "op": "put",
        "at": now,
    }
