"""A fake of the HubSpot CRM v3 contacts endpoints the hubspot sink uses,
written from HubSpot's public API documentation (the facts are listed in
connectors/sinks/hubspot.py), behind an ``httpx.MockTransport``.

It is strict where the documentation is: the bearer token, a JSON body with
only the documented keys, batches of at most 100 inputs, search pages of
at most 200 and queries that reach at most ``window`` results, property
names the account defines, string values, an empty string clearing a
property. It keeps every request it is sent, and answers queued
``failures`` (429s, 5xx) before anything else. It is not HubSpot: nothing
here was checked against a live account.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

CONTACTS = "/crm/v3/objects/contacts"
# Contact properties every account has (the ones the sink writes).
DEFAULT_PROPERTIES = frozenset(
    {"email", "firstname", "lastname", "phone", "address", "city", "state", "zip", "country"}
)
NOW = "2026-12-07T10:00:00.000Z"


@dataclass(frozen=True)
class Sent:
    """One request, as the fake received it."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any
    raw: bytes


class Refused(Exception):
    def __init__(self, status: int, message: str, category: str) -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category


def error_body(message: str, category: str) -> dict[str, str]:
    """HubSpot's error shape (its error handling page)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": "a43683b0-5717-4ceb-80b4-104d02915d8c",
        "category": category,
    }


def _invalid(message: str) -> Refused:
    return Refused(400, message, "VALIDATION_ERROR")


def _keys(body: Any, allowed: Iterable[str], required: Iterable[str], where: str) -> None:
    if not isinstance(body, dict):
        raise _invalid(f"{where}: not a JSON object")
    unknown = set(body) - set(allowed)
    missing = set(required) - set(body)
    if unknown or missing:
        raise _invalid(f"{where}: unknown {sorted(unknown)}, missing {sorted(missing)}")


def _inputs(body: Any, allowed: Iterable[str], required: Iterable[str]) -> list[dict[str, Any]]:
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= 100:
        raise _invalid("inputs: between 1 and 100 inputs")
    for item in inputs:
        _keys(item, allowed, required, "input")
    return inputs


class FakeHubSpot:
    def __init__(
        self,
        token: str = "pat-na1-11111111-2222-3333-4444-555555555555",  # noqa: S107 - a fake's
        *,
        unique: Iterable[str] = ("vrm_subject",),
        base_url: str = "https://api.hubapi.com",
    ) -> None:
        self.token = token
        self.base_url = base_url
        self.unique = set(unique)
        self.properties = DEFAULT_PROPERTIES | self.unique
        self.contacts: dict[str, dict[str, str]] = {}  # id -> properties set
        self.archived: dict[str, dict[str, str]] = {}
        self.deleted: set[str] = set()  # ids deleted for good (gdpr-delete)
        self.sent: list[Sent] = []
        self.failures: list[httpx.Response] = []
        self.window = 10_000
        # A lookup that also matches subjects the asked one begins (to prove
        # the sink checks what it gets back).
        self.loose = False
        self._next_id = 501

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add(self, properties: Mapping[str, str]) -> str:
        """A contact made some other way (the vendor's own, say)."""
        contact_id = str(self._next_id)
        self._next_id += 1
        self.contacts[contact_id] = dict(properties)
        return contact_id

    def by_subject(self, subject: str, prop: str = "vrm_subject") -> dict[str, str] | None:
        for properties in self.contacts.values():
            if properties.get(prop) == subject:
                return properties
        return None

    # -- the transport -------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        raw = request.read()
        body = json.loads(raw) if raw else None
        self.sent.append(Sent(request.method, str(request.url), dict(request.headers), body, raw))
        if self.failures:
            return self.failures.pop(0)
        try:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                raise Refused(
                    401,
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                    "INVALID_AUTHENTICATION",
                )
            if request.method != "POST" or request.url.query:
                raise Refused(405, "Method or query not supported by the fake", "VALIDATION_ERROR")
            if request.headers.get("content-type") != "application/json":
                raise Refused(415, "Content-Type must be application/json", "VALIDATION_ERROR")
            route = {
                f"{CONTACTS}/batch/upsert": self._upsert,
                f"{CONTACTS}/batch/read": self._read,
                f"{CONTACTS}/batch/update": self._update,
                f"{CONTACTS}/batch/archive": self._archive,
                f"{CONTACTS}/gdpr-delete": self._gdpr_delete,
                f"{CONTACTS}/search": self._search,
            }.get(request.url.path)
            if route is None:
                raise Refused(404, f"No route for {request.url.path}", "OBJECT_NOT_FOUND")
            return route(body)
        except Refused as refused:
            return httpx.Response(
                refused.status, json=error_body(refused.message, refused.category)
            )

    # -- what each endpoint does ---------------------------------------------

    def _values(self, properties: Any) -> dict[str, str]:
        if not isinstance(properties, dict):
            raise _invalid("properties: not an object")
        for name, value in properties.items():
            if name not in self.properties:
                raise _invalid(f'Property "{name}" does not exist')
            if not isinstance(value, str):
                raise _invalid(f'Property "{name}": values are strings')
        return properties

    def _write(self, contact_id: str, values: Mapping[str, str]) -> None:
        contact = self.contacts[contact_id]
        for name, value in values.items():
            if value == "":
                contact.pop(name, None)  # an empty string clears a property
            else:
                contact[name] = value

    def _object(self, contact_id: str, names: Iterable[str] | None = None) -> dict[str, Any]:
        contact = self.contacts[contact_id]
        # HubSpot returns these with every object, and null for a
        # property asked for and not set.
        shown: dict[str, str | None] = {
            "hs_object_id": contact_id,
            "createdate": NOW,
            "lastmodifieddate": NOW,
        }
        wanted = contact if names is None else {n: contact.get(n) for n in names}
        shown.update(wanted)
        return {
            "id": contact_id,
            "properties": shown,
            "createdAt": NOW,
            "updatedAt": NOW,
            "archived": False,
        }

    def _find(self, prop: str, value: str) -> str | None:
        for contact_id, properties in self.contacts.items():
            held = properties.get(prop)
            if held == value or (self.loose and held and held.startswith(value)):
                return contact_id
        return None

    def _unique(self, prop: Any) -> str:
        if prop not in self.unique:
            raise _invalid(f'Property "{prop}" does not exist or is not a unique value property')
        return str(prop)

    def _upsert(self, body: Any) -> httpx.Response:
        _keys(body, {"inputs"}, {"inputs"}, "body")
        inputs = _inputs(
            body, {"id", "idProperty", "properties", "objectWriteTraceId"}, {"id", "idProperty"}
        )
        ids = [item["id"] for item in inputs]
        if len(set(ids)) != len(ids):
            raise _invalid("Duplicate IDs found in batch input")
        results = []
        for item in inputs:
            prop = self._unique(item["idProperty"])
            values = self._values(item.get("properties", {}))
            contact_id = self._find(prop, item["id"])
            new = contact_id is None
            if contact_id is None:
                contact_id = self.add({prop: item["id"]})
            self._write(contact_id, values)
            results.append({**self._object(contact_id), "new": new})
        return httpx.Response(200, json=self._batch(results))

    def _read(self, body: Any) -> httpx.Response:
        _keys(
            body,
            {"inputs", "idProperty", "properties", "propertiesWithHistory"},
            {"inputs"},
            "body",
        )
        inputs = _inputs(body, {"id"}, {"id"})
        names = body.get("properties", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _invalid("properties: a list of property names")
        prop = self._unique(body["idProperty"]) if "idProperty" in body else "hs_object_id"
        results, missing = [], []
        for item in inputs:
            if prop == "hs_object_id":
                contact_id = item["id"] if item["id"] in self.contacts else None
            else:
                contact_id = self._find(prop, item["id"])
            if contact_id is None:
                missing.append(item["id"])
            else:
                results.append(self._object(contact_id, names))
        if not missing:
            return httpx.Response(200, json=self._batch(results))
        error = {
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist.",
            "context": {"ids": missing},
        }
        return httpx.Response(207, json={**self._batch(results), "errors": [error], "numErrors": 1})

    def _update(self, body: Any) -> httpx.Response:
        _keys(body, {"inputs"}, {"inputs"}, "body")
        inputs = _inputs(
            body, {"id", "idProperty", "properties", "objectWriteTraceId"}, {"id", "properties"}
        )
        results = []
        for item in inputs:
            values = self._values(item["properties"])
            if "idProperty" in item:
                contact_id = self._find(self._unique(item["idProperty"]), item["id"])
            else:
                contact_id = item["id"] if item["id"] in self.contacts else None
            if contact_id is None:
                raise Refused(
                    404,
                    f"Object not found. objectId are usually numeric: {item['id']}",
                    "OBJECT_NOT_FOUND",
                )
            self._write(contact_id, values)
            results.append(self._object(contact_id))
        return httpx.Response(200, json=self._batch(results))

    def _archive(self, body: Any) -> httpx.Response:
        _keys(body, {"inputs"}, {"inputs"}, "body")
        for item in _inputs(body, {"id"}, {"id"}):
            if item["id"] in self.contacts:
                self.archived[item["id"]] = self.contacts.pop(item["id"])
        return httpx.Response(204)

    def _gdpr_delete(self, body: Any) -> httpx.Response:
        """One contact, by id or by a unique property's value, gone for
        good: not restorable, not archived."""
        _keys(body, {"objectId", "idProperty"}, {"objectId"}, "body")
        prop = body.get("idProperty")
        found = (
            self._find(self._unique(prop), str(body["objectId"]))
            if prop is not None
            else (body["objectId"] if body["objectId"] in self.contacts else None)
        )
        if found is None:
            raise Refused(404, "resource not found", "OBJECT_NOT_FOUND")
        del self.contacts[found]
        self.deleted.add(found)
        return httpx.Response(204)

    def _search(self, body: Any) -> httpx.Response:
        _keys(body, {"filterGroups", "sorts", "properties", "limit", "after", "query"}, (), "body")
        limit = body.get("limit", 10)
        if not isinstance(limit, int) or not 1 <= limit <= 200:
            raise _invalid("limit: between 1 and 200")
        offset = int(body.get("after", "0"))
        if offset + limit > self.window:
            raise _invalid(f"The search endpoints are limited to {self.window} total results")
        matched = [cid for cid in self.contacts if self._matches(cid, body.get("filterGroups"))]
        for sort in body.get("sorts", []):
            _keys(sort, {"propertyName", "direction"}, {"propertyName", "direction"}, "sort")
            if sort["propertyName"] != "hs_object_id":
                raise _invalid("the fake sorts by hs_object_id only")
            matched.sort(key=int, reverse=sort["direction"] == "DESCENDING")
        names = body.get("properties", ["email", "firstname", "lastname"])
        page = matched[offset : offset + limit]
        answer: dict[str, Any] = {
            "total": len(matched),
            "results": [self._object(cid, names) for cid in page],
        }
        if offset + limit < len(matched):
            after = str(offset + limit)
            answer["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return httpx.Response(200, json=answer)

    def _matches(self, contact_id: str, groups: Any) -> bool:
        if not groups:
            return True
        if not isinstance(groups, list) or len(groups) > 5:
            raise _invalid("filterGroups: at most 5")
        contact = {**self.contacts[contact_id], "hs_object_id": contact_id}
        for group in groups:
            _keys(group, {"filters"}, {"filters"}, "filterGroup")
            if all(self._filter(contact, f) for f in group["filters"]):
                return True
        return False

    def _filter(self, contact: Mapping[str, str], spec: Any) -> bool:
        _keys(
            spec,
            {"propertyName", "operator", "value", "values", "highValue"},
            {"propertyName", "operator"},
            "filter",
        )
        held = contact.get(spec["propertyName"])
        operator = spec["operator"]
        if operator == "HAS_PROPERTY":
            return bool(held)
        if operator == "EQ":
            return bool(held == spec["value"])
        if operator == "GT" and spec["propertyName"] == "hs_object_id":
            return held is not None and int(held) > int(spec["value"])
        raise _invalid(f"the fake does not know the operator {operator}")

    @staticmethod
    def _batch(results: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "status": "COMPLETE",
            "results": results,
            "startedAt": NOW,
            "completedAt": NOW,
        }
