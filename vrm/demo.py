"""Demo data: one customer, ana@example.org, with a little of everything."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import Session, col, select

from vrm.accounts import service as accounts
from vrm.accounts.models import Customer
from vrm.accounts.passwords import Passwords
from vrm.catalogue.history import HistoryEvent, Item
from vrm.catalogue.preferences import Budget, Communication, Preferences, Shopping
from vrm.catalogue.profile import PostalAddress, Profile
from vrm.history import service as history
from vrm.keys.service import Vault
from vrm.records import service as records
from vrm.settings import Settings

DEMO_EMAIL = "ana@example.org"


@dataclass(frozen=True)
class DemoCustomer:
    password: str
    # None when the server holds the root key (settings.key_custody).
    recovery_key: str | None


def load_demo(
    *, session: Session, vault: Vault, passwords: Passwords, settings: Settings
) -> DemoCustomer | None:
    """Create the demo customer; returns its password and recovery key, or
    None if the customer already exists (they were shown when it was
    made)."""
    index = vault.blind_index("email", DEMO_EMAIL)
    if session.exec(select(Customer.id).where(col(Customer.email_index) == index)).first():
        return None
    password = secrets.token_urlsafe(12)
    made = accounts.sign_up(
        session=session,
        vault=vault,
        passwords=passwords,
        settings=settings,
        email=DEMO_EMAIL,
        password=password,
    )
    customer = made.customer
    # Writing as the customer would: their own root key, for this only.
    accounts.unlock_with_password(
        session=session, vault=vault, passwords=passwords, customer=customer, password=password
    )
    try:
        _write_demo_data(session=session, vault=vault, customer_id=customer.id)
    finally:
        vault.lock(customer.id)
    return DemoCustomer(password, made.recovery_key)


def _write_demo_data(*, session: Session, vault: Vault, customer_id: str) -> None:
    records.replace_document(
        session=session,
        vault=vault,
        customer_id=customer_id,
        category="profile",
        data=Profile(
            given_name="Ana",
            family_name="Lima",
            email="ana@example.org",
            phone="+351 21 000 0000",
            postal_address=PostalAddress(
                street_address="Rua das Flores 12",
                locality="Lisboa",
                postal_code="1200-195",
                country="PT",
            ),
            language="pt-PT",
        ),
        if_match=None,
    )
    records.replace_document(
        session=session,
        vault=vault,
        customer_id=customer_id,
        category="preferences",
        data=Preferences(
            communication=Communication(channels=["email"], frequency="monthly", language="en"),
            shopping=Shopping(
                sizes={"shoes": "EU 38", "tops": "S"},
                brands=["Patagonia"],
                interests=["hiking", "science fiction", "coffee"],
                budget=Budget(amount=Decimal("150.00"), currency="EUR"),
            ),
            dietary=["vegetarian"],
        ),
        if_match=None,
    )
    events = [
        HistoryEvent(
            vendor="Livraria Bertrand",
            type="purchase",
            occurred_at=datetime(2026, 3, 14, 16, 5, tzinfo=UTC),
            items=[
                Item(name="The Very Hungry Caterpillar", amount=Decimal("9.90"), labels={"gift"})
            ],
            amount=Decimal("9.90"),
            currency="EUR",
            channel="store",
            notes="Birthday present for my nephew.",
            labels={"gift"},
        ),
        HistoryEvent(
            vendor="Livraria Bertrand",
            type="purchase",
            occurred_at=datetime(2026, 5, 2, 11, 30, tzinfo=UTC),
            items=[Item(name="The Left Hand of Darkness", amount=Decimal("12.50"))],
            amount=Decimal("12.50"),
            currency="EUR",
            channel="online",
            rating=5,
        ),
        HistoryEvent(
            vendor="Mountain Gear Co.",
            type="purchase",
            occurred_at=datetime(2026, 6, 20, 9, 0, tzinfo=UTC),
            items=[Item(name="Trail running shoes", sku="TRS-38", amount=Decimal("119.00"))],
            amount=Decimal("119.00"),
            currency="EUR",
            channel="online",
        ),
        HistoryEvent(
            vendor="Mountain Gear Co.",
            type="support_case",
            occurred_at=datetime(2026, 7, 3, 14, 45, tzinfo=UTC),
            notes="Sole came loose after three weeks; replacement sent.",
            channel="email",
        ),
        HistoryEvent(
            vendor="Farmácia Central",
            type="purchase",
            occurred_at=datetime(2026, 8, 9, 18, 20, tzinfo=UTC),
            amount=Decimal("23.40"),
            currency="EUR",
            channel="store",
            labels={"private"},
        ),
    ]
    for event in events:
        history.add_event(
            session=session, vault=vault, customer_id=customer_id, event=event, source="customer"
        )
