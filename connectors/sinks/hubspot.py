"""The ``hubspot`` sink: contacts in HubSpot, through its CRM v3 objects API.

Each subject is one contact whose custom property ``subject_property``
(``vrm_subject`` by default) holds the pairwise subject. The operator
creates that property first, as a single-line text property with unique
values (``hasUniqueValue``): HubSpot reads, upserts and updates records by
a unique property's value (``idProperty``), so the sink never keeps a map
of HubSpot's own ids.

Sink fields are HubSpot's contact properties: ``email``, ``firstname``,
``lastname``, ``phone``, and ``address``, a postal address object spread
over HubSpot's ``address``, ``city``, ``state``, ``zip`` and ``country``.
Any other field is dropped, never guessed; a field that is not text is
refused rather than written as something it is not. HubSpot contacts hold
no purchase history here: the sink holds no events.

What the sink relies on, from HubSpot's public API documentation
(developers.hubspot.com, CRM v3 contacts, search, usage guidelines and
error handling pages); it is tested against a fake built from them, not a
live account:

- Authentication: ``Authorization: Bearer <token>`` (a private app's
  access token with ``crm.objects.contacts.read`` and ``.write``).
- ``POST /crm/v3/objects/contacts/batch/upsert``: ``{"inputs": [{"id":
  <value>, "idProperty": <property>, "properties": {...}}]}`` creates or
  updates each contact found by a unique property's value.
- ``POST /crm/v3/objects/contacts/batch/read`` with ``idProperty``,
  ``inputs`` and ``properties``: the contacts found. A read where some are
  missing answers 207 (Multi-Status) with the ones found and ``errors`` for
  the rest (HubSpot/hubspot-api-php#619 shows one).
- ``POST /crm/v3/objects/contacts/batch/update``: "property values can be
  cleared by passing an empty string".
- ``POST /crm/v3/objects/contacts/gdpr-delete`` with ``{"objectId":
  <id>}`` permanently deletes one contact "and all associated content to
  follow GDPR" (no body in the answer); it is not restorable.
- ``POST /crm/v3/objects/contacts/batch/archive`` with ``{"inputs":
  [{"id": ...}]}`` answers 204 whatever the contacts' state (active,
  archived, missing: the API reference's own words). Archived contacts
  can be restored within 90 days.
- Batch endpoints take at most 100 inputs; a 207 answer lists the inputs
  that failed in ``errors``, each with ``message`` and ``category``.
- ``POST /crm/v3/objects/contacts/search``: ``filterGroups`` of
  ``filters`` (``propertyName``, ``operator``, ``value``), ``sorts``,
  ``properties``, ``limit`` (at most 200) and ``after``; the next page's
  cursor is ``paging.next.after``. One query reaches at most 10,000
  results, and objects appear in search a little after they are written.
- Errors: ``{"status": "error", "message": ..., "category": ...,
  "correlationId": ...}``, every field optional.
- Rate limits: 429 when exceeded; ``X-HubSpot-RateLimit-*`` headers say the
  limit, what remains, and (``-Interval-Milliseconds``) the window.

A contact the sink removes (nothing of the customer's left in it, or the
subject deleted) is deleted for good with ``gdpr-delete``, one request a
contact: consent ended, so the copy goes. ``removal="archive"`` archives
instead, 100 a request, and HubSpot keeps them restorable for 90 days:
for a vendor whose own content on a contact must outlive the customer's
data (gdpr-delete takes that too).

Every request is a POST that is safe to send twice (an upsert or update
by id, a deletion, an archive, a read or a search), so one meeting 429, a 5xx or no
answer is tried again (:func:`connectors.store.with_retries`), waiting at
least ``Retry-After`` or, when HubSpot sends none, one rate-limit window.

HubSpot's guide says a new contact *should* have an ``email``,
``firstname`` or ``lastname``. The sink writes what the grant gives and
nothing else: a grant of a phone alone makes a contact with a phone alone,
or HubSpot's refusal, in one line.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

import httpx

from connectors.sinks import NoHistory
from connectors.store import StoreError, with_retries

CONTACTS = "/crm/v3/objects/contacts"
BATCH = 100  # inputs per batch request (HubSpot's limit)
SEARCH_PAGE = 200  # results per search page (HubSpot's limit)
SEARCH_WINDOW = 10_000  # results one search query reaches (HubSpot's limit)
REMOVALS = ("permanent", "archive")

# The store's fields to the sink's, by default (connectors/sinks/open.py).
HUBSPOT: dict[str, str] = {
    "profile.given_name": "firstname",
    "profile.family_name": "lastname",
    "profile.email": "email",
    "profile.phone": "phone",
    "profile.postal_address": "address",
}
TEXT_FIELDS = ("email", "firstname", "lastname", "phone")
FIELDS = (*TEXT_FIELDS, "address")
# HubSpot's properties for the parts of a postal address.
ADDRESS = {
    "street_address": "address",
    "locality": "city",
    "region": "state",
    "postal_code": "zip",
    "country": "country",
}
PROPERTIES = (*TEXT_FIELDS, *ADDRESS.values())

T = TypeVar("T")


class HubSpotError(RuntimeError):
    """HubSpot refused a request or did not answer (one line, with
    HubSpot's own message and category, never the token)."""


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""  # HubSpot clears a property given an empty string
    if isinstance(value, str):
        return value
    raise HubSpotError(f"the field {name} is not text ({type(value).__name__})")


class HubSpotSink(NoHistory):
    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.hubapi.com",
        subject_property: str = "vrm_subject",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        removal: Literal["permanent", "archive"] = "permanent",
    ) -> None:
        if removal not in REMOVALS:
            raise HubSpotError(f"removal: {removal!r} is not one of {', '.join(REMOVALS)}")
        self.removal = removal
        self.http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=30,
            transport=transport,
            follow_redirects=False,
        )
        self.subject_property = subject_property
        self._token = token
        self._sleep = sleep

    def close(self) -> None:
        self.http.close()

    # -- HTTP --------------------------------------------------------------

    def _attempt(self, path: str, body: Mapping[str, Any]) -> httpx.Response:
        response = self.http.post(path, json=body)
        if response.status_code == 429 and "retry-after" not in response.headers:
            # with_retries waits what Retry-After says; HubSpot may send
            # only its window's length, which is how long to wait.
            window = response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
            if window.strip().isdigit():
                response.headers["Retry-After"] = str(math.ceil(int(window) / 1000))
        return response

    def _post(self, path: str, body: Mapping[str, Any], doing: str) -> httpx.Response:
        try:
            return with_retries(lambda: self._attempt(path, body), self._sleep)
        except (StoreError, httpx.HTTPError) as exc:
            raise HubSpotError(f"HubSpot does not answer ({type(exc).__name__})") from None

    def _line(self, text: str) -> str:
        text = " ".join(text.split()).replace(self._token, "[token]")
        return text if len(text) <= 400 else text[:399] + "…"

    def _refusal(self, doing: str, status: int, error: Any) -> HubSpotError:
        text = f"HubSpot refused to {doing} ({status})"
        if isinstance(error, Mapping):
            if error.get("message"):
                text += f": {error['message']}"
            if error.get("category"):
                text += f" [{error['category']}]"
        return HubSpotError(self._line(text))

    def _answer(self, response: httpx.Response, doing: str, *, partial: bool = False) -> Any:
        """The answer's body; a refusal raised. A 207 is a refusal of some
        inputs unless ``partial`` (a read, where missing ones are simply
        not found)."""
        status = response.status_code
        if status == 204:
            return {}
        try:
            body = response.json()
        except ValueError:
            body = None
        if status in (200, 201) or (status == 207 and partial):
            return body if isinstance(body, dict) else {}
        if status == 207 and isinstance(body, dict):
            errors = body.get("errors") or [{}]
            raise self._refusal(f"{doing} (of a batch, {len(errors)} failed)", status, errors[0])
        raise self._refusal(doing, status, body)

    # -- reading -----------------------------------------------------------

    def _read(self, subjects: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Subject -> contact (its ``id`` and ``properties``), for those
        HubSpot holds, matched on the subject exactly."""
        found: dict[str, dict[str, Any]] = {}
        wanted = set(subjects)
        for batch in _batches(list(dict.fromkeys(subjects))):
            body = {
                "idProperty": self.subject_property,
                "inputs": [{"id": subject} for subject in batch],
                "properties": [*PROPERTIES, self.subject_property],
            }
            r = self._post(f"{CONTACTS}/batch/read", body, "read contacts")
            for contact in self._answer(r, "read contacts", partial=True).get("results") or []:
                properties = contact.get("properties") or {}
                subject = properties.get(self.subject_property)
                if subject in wanted:
                    found[subject] = {"id": str(contact["id"]), "properties": properties}
        return found

    def find(self, subject: str) -> dict[str, Any] | None:
        contact = self._read([subject]).get(subject)
        if contact is None:
            return None
        properties = contact["properties"]
        out: dict[str, Any] = {name: properties.get(name) or None for name in TEXT_FIELDS}
        address = {part: properties.get(name) for part, name in ADDRESS.items()}
        out["address"] = {part: value for part, value in address.items() if value} or None
        return out

    def subjects(self) -> list[str]:
        """Every subject held, through the search API: sorted by HubSpot's
        id, so that past one query's 10,000 results the next query starts
        after the last id seen. A contact written in the last moments may
        not be searchable yet."""
        found: list[str] = []
        last_id: str | None = None
        while True:
            filters: list[dict[str, str]] = [
                {"propertyName": self.subject_property, "operator": "HAS_PROPERTY"}
            ]
            if last_id is not None:
                filters.append({"propertyName": "hs_object_id", "operator": "GT", "value": last_id})
            body: dict[str, Any] = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": [self.subject_property],
                "limit": SEARCH_PAGE,
            }
            reached = 0
            while True:
                page = self._answer(
                    self._post(f"{CONTACTS}/search", body, "search contacts"), "search contacts"
                )
                for contact in page.get("results") or []:
                    subject = (contact.get("properties") or {}).get(self.subject_property)
                    if isinstance(subject, str) and subject:
                        found.append(subject)
                    last_id = str(contact["id"])
                    reached += 1
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return sorted(set(found))
                if reached + SEARCH_PAGE > SEARCH_WINDOW:
                    break  # a new query, after the last id seen
                body["after"] = after

    # -- writing -----------------------------------------------------------

    def _properties(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """HubSpot's properties for these sink fields; unknown ones dropped."""
        out: dict[str, str] = {}
        for name, value in fields.items():
            if name == "address":
                if value is not None and not isinstance(value, Mapping):
                    raise HubSpotError(
                        f"the field address is not an address ({type(value).__name__})"
                    )
                parts = value or {}
                for part, prop in ADDRESS.items():
                    out[prop] = _text(f"address.{part}", parts.get(part))
            elif name in TEXT_FIELDS:
                out[name] = _text(name, value)
        return out

    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        self.upsert_many([(subject, fields)])

    def upsert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Several subjects' fields, 100 contacts a request. A subject named
        twice is written once, its later fields winning; one whose fields
        are all empty only clears them (and its contact goes if nothing is
        left), so that no contact is created empty."""
        merged: dict[str, dict[str, str]] = {}
        for subject, fields in rows:
            merged.setdefault(subject, {}).update(self._properties(fields))
        writes = [(s, props) for s, props in merged.items() if any(props.values())]
        for batch in _batches(writes):
            body = {
                "inputs": [
                    {"id": subject, "idProperty": self.subject_property, "properties": props}
                    for subject, props in batch
                ]
            }
            r = self._post(f"{CONTACTS}/batch/upsert", body, "upsert contacts")
            self._answer(r, "upsert contacts")
        emptied = {s: props for s, props in merged.items() if props and not any(props.values())}
        if emptied:
            self._clear(emptied)

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        self._clear({subject: self._properties(dict.fromkeys(f for f in fields if f in FIELDS))})

    def _clear(self, cleared: Mapping[str, Mapping[str, str]]) -> None:
        """Clear these properties of each subject's contact; remove those
        left with none of the sink's properties."""
        contacts = self._read(list(cleared))
        updates: list[dict[str, Any]] = []
        archive: list[str] = []
        for subject, contact in contacts.items():
            props = cleared[subject]
            left = [
                name for name in PROPERTIES if name not in props and contact["properties"].get(name)
            ]
            if not left:
                archive.append(contact["id"])
            elif props:
                updates.append({"id": contact["id"], "properties": dict(props)})
        for batch in _batches(updates):
            r = self._post(f"{CONTACTS}/batch/update", {"inputs": batch}, "clear properties")
            self._answer(r, "clear properties")
        self._remove(archive)

    def _remove(self, ids: Sequence[str]) -> None:
        """Delete these contacts for good, or archive them (``removal``)."""
        if self.removal == "archive":
            for batch in _batches(ids):
                body = {"inputs": [{"id": contact_id} for contact_id in batch]}
                r = self._post(f"{CONTACTS}/batch/archive", body, "archive contacts")
                self._answer(r, "archive contacts")
            return
        for contact_id in ids:
            r = self._post(f"{CONTACTS}/gdpr-delete", {"objectId": contact_id}, "delete a contact")
            if r.status_code != 404:  # gone already
                self._answer(r, "delete a contact")

    def delete_subject(self, subject: str) -> None:
        contact = self._read([subject]).get(subject)
        if contact is not None:
            self._remove([contact["id"]])
