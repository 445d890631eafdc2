"""The ``bottlecrm`` sink: contacts in BottleCRM (PyPI ``django-crm``), an
open-source CRM with a REST API (tests/connectors/BOTTLECRM.md).

Each subject is one contact carrying the pairwise subject in a custom
field (``subject_field``, ``vrm_subject`` by default, defined on the org's
contacts by the operator or by this sink when its token may). The sink finds
a contact by that field exactly: it reads the org's contacts once, a page
at a time, and keeps the subject -> contact id map up to date as it writes
(BottleCRM's own custom-field filter needs PostgreSQL under it). A delete
or a find that misses reads the map again: a ``listen`` beside a ``sync``
must see the contacts the sync created.

Sink fields: ``first_name``, ``last_name``, ``email``, ``phone``, and
``address`` (a postal address object, spread over BottleCRM's address
fields). BottleCRM requires both names on a contact; one the customer did
not share is written as :data:`NOT_SHARED`, never guessed. BottleCRM has
no place for purchase history: the sink holds no events (as an unmapped
field, they are dropped).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from connectors.sinks import NoHistory
from connectors.store import with_retries

NOT_SHARED = "(not shared)"
# The store's fields to this sink's, by default.
BOTTLECRM: dict[str, str] = {
    "profile.given_name": "first_name",
    "profile.family_name": "last_name",
    "profile.email": "email",
    "profile.phone": "phone",
    "profile.postal_address": "address",
}
PAGE = 500
FIELDS = ("first_name", "last_name", "email", "phone", "address")
# BottleCRM's fields for the parts of a postal address.
ADDRESS = {
    "street_address": "address_line",
    "locality": "city",
    "region": "state",
    "postal_code": "postcode",
    "country": "country",
}


class BottleCRMError(RuntimeError):
    """BottleCRM refused a write (one line, with its own words)."""


class BottleCRMSink(NoHistory):
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        subject_field: str = "vrm_subject",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
            transport=transport,
            follow_redirects=False,
        )
        self.subject_field = subject_field
        self._ids: dict[str, str] | None = None

    @classmethod
    def from_env(cls, base_url: str, token_env: str, subject_field: str) -> BottleCRMSink:
        token = os.environ.get(token_env)
        if not token:
            raise BottleCRMError(f"sink.token_env: the variable {token_env} is not set")
        return cls(base_url, token, subject_field=subject_field)

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return with_retries(lambda: self.http.request(method, path, **kw))
        except Exception as exc:
            raise BottleCRMError(f"BottleCRM does not answer ({type(exc).__name__})") from None

    def _checked(self, response: httpx.Response, doing: str) -> dict[str, Any]:
        if response.status_code in (200, 201):
            body = response.json()
            return body if isinstance(body, dict) else {}
        detail = ""
        try:
            body = response.json()
            errors = body.get("errors") or body.get("detail") if isinstance(body, dict) else None
            detail = f": {errors}" if errors else ""
        except ValueError:
            pass
        raise BottleCRMError(f"BottleCRM refused to {doing} ({response.status_code}){detail}")

    def _known(self, subject: str) -> str | None:
        """The subject's contact id; on a miss, read the map again first:
        another process (a sync beside this ``listen``) may have created
        it since."""
        found = self.ids().get(subject)
        if found is None:
            self._ids = None
            found = self.ids().get(subject)
        return found

    def ids(self) -> dict[str, str]:
        """Subject -> contact id, read once from the org's contacts (and
        again on a miss by a delete or a find)."""
        if self._ids is None:
            found: dict[str, str] = {}
            offset = 0
            while True:
                r = self._send("GET", "/api/contacts/", params={"limit": PAGE, "offset": offset})
                body = self._checked(r, "list contacts")
                rows = body.get("results") or []
                for contact in rows:
                    subject = (contact.get("custom_fields") or {}).get(self.subject_field)
                    if isinstance(subject, str) and subject:
                        found[subject] = str(contact["id"])
                offset += len(rows)
                if not rows or offset >= int(body.get("count", 0)):
                    break
            self._ids = found
        return self._ids

    def _body(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "address":
                parts = value if isinstance(value, Mapping) else {}
                for part, field in ADDRESS.items():
                    body[field] = parts.get(part)
            elif name in ("first_name", "last_name"):
                body[name] = value or NOT_SHARED
            elif name in FIELDS:
                body[name] = value
        return body

    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        body = self._body(fields)
        contact = self.ids().get(subject)
        if contact is None:
            body.setdefault("first_name", NOT_SHARED)
            body.setdefault("last_name", NOT_SHARED)
            body["custom_fields"] = {self.subject_field: subject}
            created = self._checked(self._send("POST", "/api/contacts/", json=body), "create")
            self.ids()[subject] = str(created["id"])
            return
        if body:
            r = self._send("PATCH", f"/api/contacts/{contact}/", json=body)
            self._checked(r, "update a contact")

    def upsert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        for subject, fields in rows:
            self.upsert(subject, fields)

    def _contact(self, subject: str) -> dict[str, Any] | None:
        contact = self._known(subject)
        if contact is None:
            return None
        r = self._send("GET", f"/api/contacts/{contact}/")
        if r.status_code == 404:
            self.ids().pop(subject, None)
            return None
        found = self._checked(r, "read a contact").get("contact_obj")
        return found if isinstance(found, dict) else None

    def find(self, subject: str) -> dict[str, Any] | None:
        contact = self._contact(subject)
        if contact is None:
            return None
        out: dict[str, Any] = {}
        for name in ("first_name", "last_name"):
            value = contact.get(name)
            out[name] = None if value == NOT_SHARED else value
        out["email"] = contact.get("email") or None
        out["phone"] = contact.get("phone") or None
        address = {part: contact.get(field) for part, field in ADDRESS.items()}
        out["address"] = {k: v for k, v in address.items() if v} or None
        return out

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        contact = self._known(subject)
        if contact is None:
            return
        body = self._body(dict.fromkeys(f for f in fields if f in FIELDS))
        if body:
            r = self._send("PATCH", f"/api/contacts/{contact}/", json=body)
            self._checked(r, "clear a contact's fields")
        left = self.find(subject)
        if left is not None and not any(left.values()):
            self.delete_subject(subject)

    def delete_subject(self, subject: str) -> None:
        contact = self._known(subject)
        if contact is None:
            return
        self.ids().pop(subject, None)
        r = self._send("DELETE", f"/api/contacts/{contact}/")
        if r.status_code != 404:
            self._checked(r, "delete a contact")

    def subjects(self) -> list[str]:
        return sorted(self.ids())
