"""Realistic customer data for the benchmarks.

``PROFILE`` and ``PREFERENCES``: one customer who filled in every field, the
data API's view (~1 KB as canonical JSON). ``profile(i)``,
``preferences(i)`` and ``event(rng)``: many different customers and
history events of about 500 bytes, for the customer API.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

# The bench customer: every field filled in, so the view is the whole of both
# documents (~1 KB as canonical JSON with the subject, grant id and purpose).
PROFILE = {
    "given_name": "Ana Beatriz",
    "family_name": "Lima Carvalho",
    "email": "ana.lima@example.org",
    "phone": "+351 21 000 0000",
    "postal_address": {
        "street_address": "Rua das Flores 12, 3 esq.",
        "locality": "Lisboa",
        "region": "Lisboa",
        "postal_code": "1200-195",
        "country": "PT",
    },
    "birth_date": "1988-04-17",
    "language": "pt-PT",
}
PREFERENCES = {
    "communication": {
        "channels": ["email", "sms"],
        "frequency": "monthly",
        "quiet_hours": {"start": "21:00:00", "end": "08:00:00"},
        "language": "en",
    },
    "shopping": {
        "sizes": {"shoes": "EU 38", "tops": "S", "trousers": "EU 36", "rings": "52"},
        "brands": ["Patagonia", "Vaude", "Bertrand", "Delta Cafes"],
        "interests": ["hiking", "science fiction", "coffee", "birdwatching", "ceramics"],
        "budget": {"amount": "150.00", "currency": "EUR"},
    },
    "dietary": ["vegetarian", "no peanuts"],
    "accessibility": ["large print"],
    "free": {
        "newsletter.topics": "new arrivals, outdoor gear, translated fiction",
        "delivery.preferred_slot": "weekday evenings",
        "gift_wrap": True,
        "loyalty.card": "none",
    },
}


def canonical_json(body: object) -> bytes:
    """As vrm.vendor_api.projection.canonical_json serialises the view."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


GIVEN = ["Ana", "Bruno", "Chloé", "Dmitri", "Eva", "Farid", "Grace", "Hugo", "Ines", "Jonas"]
FAMILY = ["Silva", "Moreau", "Okafor", "Lindqvist", "García", "Novak", "Tanaka", "Müller"]
CITIES = [("Lisboa", "1200-195", "PT"), ("Lyon", "69002", "FR"), ("Malmö", "211 22", "SE")]
VENDORS = ["Livraria Bertrand", "Decathlon", "Farmácia Central", "IKEA", "Fnac", "Zara"]
ITEMS = ["Paperback novel", "Running shoes", "Vitamin D 1000 IU", "Desk lamp", "Headphones"]
NOTES = (
    "Delivered a day late but well packed; the courier left it with the neighbour at number 14."
    " Keep the receipt for the two-year warranty, the shop said returns go through the app."
)


def profile(i: int) -> dict[str, Any]:
    given, family = GIVEN[i % len(GIVEN)], FAMILY[i % len(FAMILY)]
    city, postcode, country = CITIES[i % len(CITIES)]
    return {
        "given_name": given,
        "family_name": family,
        "email": f"{given.lower()}.{i}@example.org",
        "phone": f"+351 21 555 {i:04d}",
        "postal_address": {
            "street_address": f"Rua das Flores {i + 1}, 3 esq.",
            "locality": city,
            "region": city,
            "postal_code": postcode,
            "country": country,
        },
        "birth_date": f"{1960 + i % 40}-0{1 + i % 9}-1{i % 10}",
        "language": "pt-PT",
    }


def preferences(i: int) -> dict[str, Any]:
    return {
        "communication": {
            "channels": ["email", "sms"] if i % 2 else ["email"],
            "frequency": "weekly",
            "quiet_hours": {"start": "21:00:00", "end": "08:00:00"},
            "language": "pt-PT",
        },
        "shopping": {
            "sizes": {"shoes": str(36 + i % 10), "shirt": "M", "trousers": "38"},
            "brands": ["Patagonia", "Muji", "Fjällräven"],
            "interests": ["books", "trail running", "cooking"],
            "budget": {"amount": "150.00", "currency": "EUR"},
        },
        "dietary": ["vegetarian"],
        "accessibility": ["large print"],
        "free": {"newsletter.topics": "books,travel", "loyalty.opt_in": True, "children": 2},
    }


def event(rng: random.Random) -> dict[str, Any]:
    """A history event of about 500 bytes of JSON."""
    items = [
        {
            "name": rng.choice(ITEMS),
            "sku": f"SKU-{rng.randrange(10**6):06d}",
            "quantity": rng.randint(1, 3),
            "amount": f"{rng.uniform(3, 80):.2f}",
        }
        for _ in range(2)
    ]
    if rng.random() < 0.2:
        items[0]["labels"] = ["gift"]
    occurred = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(10**6))
    return {
        "vendor": rng.choice(VENDORS),
        "type": rng.choice(["purchase", "purchase", "purchase", "return", "visit"]),
        "occurred_at": occurred.isoformat(),
        "items": items,
        "amount": f"{sum(float(x['amount']) for x in items):.2f}",
        "currency": "EUR",
        "channel": rng.choice(["online", "store", "app"]),
        "rating": rng.randint(1, 5),
        "notes": NOTES,
        "labels": ["private"] if rng.random() < 0.1 else [],
    }


def history(n: int, seed: int = 15) -> list[dict[str, Any]]:
    """``n`` events of one realistic customer, newest last: items, amounts
    and notes on every event, ``gift`` on about one event in six and on some
    items, and exactly one event labelled ``private`` (which no vendor ever
    sees, so it is in the customer's history but not in a vendor's view)."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        shown = event(rng)
        shown["labels"] = ["gift"] if i % 6 == 3 else []
        events.append(shown)
    if events:
        events[n // 2]["labels"] = ["private"]
    return events
