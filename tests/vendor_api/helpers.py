"""What the vendor data API tests share: a customer's data, reads, events."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlmodel import Session, col, select

from tests.conftest import Person
from tests.consent.conftest import Vendor
from tests.kit import bearer
from vrm.vendor_api.models import AccessEvent

ME = "/api/v1/me"
PROFILE = {
    "given_name": "Ana",
    "family_name": "Silva",
    "email": "ana.contact@example.net",
    "phone": "+351 912 345 678",
    "postal_address": {"street_address": "Rua Augusta 1", "country": "PT"},
    "language": "pt-PT",
}
PREFERENCES = {
    "communication": {"channels": ["email"]},
    "dietary": ["vegetarian"],
    "free": {"team": "green"},
}


def access_events(app: FastAPI, customer_id: str) -> list[AccessEvent]:
    with Session(app.state.engine) as session:
        return list(
            session.exec(
                select(AccessEvent)
                .where(col(AccessEvent.customer_id) == customer_id)
                .order_by(col(AccessEvent.at))
            ).all()
        )


def put(person: Person, category: str, body: dict[str, Any]) -> None:
    r = person.client.put(f"{ME}/{category}", json=body)
    assert r.status_code == 200, r.text


def add_event(person: Person, **event: Any) -> str:
    body = {"vendor": "Bertrand Books", "type": "purchase", **event}
    r = person.client.post(f"{ME}/history", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def read(vendor: Vendor, token: str, path: str = "/v1/data", **headers: str) -> Any:
    return vendor.client.get(path, headers={**bearer(token), **headers})


HISTORY = "/v1/data/history"
# An event's occurred_at on the n-th of November (n from 1 to 9).
WHEN = "2026-11-0{}T10:00:00Z"


def history_page(vendor: Vendor, token: str, **params: Any) -> Any:
    """One page of /v1/data/history, which must be a 200."""
    r = vendor.client.get(HISTORY, params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def feed_token(vendor: Vendor) -> str:
    r = vendor.token(grant_type="client_credentials", scope="feed:read")
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def feed_page(vendor: Vendor, token: str, cursor: str | None = None, limit: int = 100) -> Any:
    params: dict[str, Any] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    r = vendor.client.get("/v1/feed", params=params, headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


def read_feed(
    vendor: Vendor, token: str, cursor: str | None = None, limit: int = 100
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every item from ``cursor`` to the end, and the cursor after each page."""
    items: list[dict[str, Any]] = []
    cursors: list[str] = []
    while True:
        page = feed_page(vendor, token, cursor, limit)
        items += page["items"]
        cursor = page["next_cursor"]
        cursors.append(cursor)
        if not page["has_more"]:
            return items, cursors


class Replica:
    """What a vendor that applies its feed holds: subject -> category ->
    fields (documents) or event id -> event (history)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    def apply(self, items: list[dict[str, Any]]) -> Replica:
        for item in items:
            subject = item["subject"]
            held = self.data.setdefault(subject, {})
            kind = item["type"]
            if kind == "snapshot":
                held.clear()
                for category, value in item["data"].items():
                    if category == "history":
                        held[category] = {e["id"]: e for e in value}
                    else:
                        held[category] = dict(value)
            elif kind == "upsert" and item["category"] == "history":
                held.setdefault("history", {})[item["data"]["id"]] = item["data"]
            elif kind == "upsert":
                held.setdefault(item["category"], {}).update(item["data"])
            elif kind == "delete":
                held.get("history", {}).pop(item["event_id"], None)
            elif kind == "tombstone":
                for name in item["fields"]:
                    category, _, field = name.partition(".")
                    if field:
                        held.get(category, {}).pop(field, None)
                    else:
                        held.pop(category, None)
                for category in [c for c, v in held.items() if not v and c != "history"]:
                    del held[category]
            else:
                raise AssertionError(f"unknown item type {kind}")
            if not held:
                del self.data[subject]
        return self


def as_replica(document: dict[str, Any]) -> dict[str, Any]:
    """A /v1/data document in the Replica's shape."""
    held: dict[str, Any] = {}
    for category, value in document.items():
        if category in ("subject", "grant_id", "purpose"):
            continue
        held[category] = {e["id"]: e for e in value} if category == "history" else value
    return held


# A vendor's deposit of a purchase (POST /v1/history).
RECEIPT = {
    "vendor": "Bertrand Books",
    "type": "purchase",
    "occurred_at": "2026-11-20T15:30:00Z",
    "items": [{"name": "Ensaio sobre a Cegueira", "amount": "12.90"}],
    "amount": "12.90",
    "currency": "EUR",
    "channel": "store",
}
