"""The ``dynamics`` sink: contacts in Microsoft Dataverse (Dynamics 365),
through its Web API (OData 4.0 at ``[org]/api/data/v9.2/``).

Each subject is one contact whose alternate key column ``subject_column``
(``vrm_subject`` by default) holds the pairwise subject. The operator adds
that text column to the contact table and defines an alternate key on it
alone before the first sync. The store's subjects are 43 characters of
base64url, so the column must be at least that long. The sink names every
contact by that key in the URL, so it never needs the contact's id.
Dataverse compares strings without regard to case (filter-rows), so two
subjects differing only in case would name one contact. The subjects are
256-bit MACs, and case-folded they still carry about 220 bits, so in
practice that never happens.

Sink fields are contact columns: ``firstname``, ``lastname``,
``emailaddress1``, ``telephone1``, and ``address1``, a postal address
spread over ``address1_line1``, ``address1_city``,
``address1_stateorprovince``, ``address1_postalcode`` and
``address1_country``. Other names are dropped and never sent. Nothing is
made up: ``lastname`` is ApplicationRequired, which forms enforce and the
API does not (only SystemRequired columns refuse null), so a name the
customer did not share stays empty. Dataverse contacts have no place here
for purchase history, so the sink holds no events.

What the sink relies on, from Microsoft's documentation (learn.microsoft.com,
``power-apps/developer/data-platform/``, page by page):

- ``use-upsert-insert-update-record``: ``PATCH contacts(key='v')`` creates
  the row when no row has that key and updates it otherwise. Either way
  the answer is ``204 No Content`` with ``OData-EntityId``. On create the
  key is copied from the URL, so the body leaves it out.
- ``perform-conditional-operations-using-web-api``: ``If-Match: *`` makes a
  PATCH an update only (``404`` when the row is absent), and
  ``If-None-Match: *`` makes it a create only (``412``). Clearing fields
  uses ``If-Match: *`` so that a contact deleted meanwhile is not created
  again.
- ``use-alternate-key-reference-record``, ``retrieve-entity-using-web-api``:
  ``GET``, ``PATCH`` and ``DELETE`` on ``contacts(vrm_subject='v')``, with
  ``404`` when no row has the key.
- ``webapi/query/filter-rows``: in a string literal, a single quote is
  doubled, and special characters are URL-encoded.
- ``update-delete-entities-using-web-api``: a column is cleared by sending
  null. ``PATCH ...?$select=`` with ``Prefer: return=representation``
  answers ``200`` with the row, so clearing fields and learning what is
  left takes one request. ``DELETE`` answers ``204``, or ``404``.
- ``query-data-web-api``: ``Prefer: odata.maxpagesize=N`` (at most 5000).
  ``@odata.nextLink`` is followed as given, not re-encoded, with the same
  preference.
- ``execute-batch-operations-using-web-api``: ``POST $batch``, a
  ``multipart/mixed`` body of up to 1000 requests. A change set inside it
  is one transaction, and parts are separated by ``--boundary`` lines.
- ``compose-http-requests-handle-errors``: ``Accept: application/json``,
  ``OData-MaxVersion: 4.0``, ``OData-Version: 4.0``, ``If-None-Match:
  null``, and ``Content-Type: application/json`` with a JSON body. Errors
  are ``{"error": {"code": "0x...", "message": "..."}}``.
- ``api-limits``: ``429 Too Many Requests`` with ``Retry-After`` in seconds.
  :func:`connectors.store.with_retries` waits at least that long, and
  retries 5xx and no answer with backoff.
- ``authenticate-oauth``: an OAuth access token, sent as ``Authorization:
  Bearer``. The operator obtains it; the sink does not refresh it.

Tested against a fake built from these pages (tests/connectors/fake_dataverse.py),
not against a live environment.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from connectors.sinks import NoHistory
from connectors.sinks.crm_auth import BearerToken, CrmAuthError
from connectors.store import StoreError, with_retries

API = "/api/data/v9.2"
# Rows asked for per page of a listing (Dataverse allows up to 5000).
PAGE = 1000
# Upserts per $batch change set. Dataverse takes up to 1000 requests in a
# batch; a smaller change set keeps each transaction short. Not measured
# against a live environment.
PER_BATCH = 100
COLUMNS = ("firstname", "lastname", "emailaddress1", "telephone1")
ADDRESS_FIELD = "address1"
# The parts of a postal address (the store's profile.postal_address), and
# the contact columns that hold them.
ADDRESS = {
    "street_address": "address1_line1",
    "locality": "address1_city",
    "region": "address1_stateorprovince",
    "postal_code": "address1_postalcode",
    "country": "address1_country",
}
FIELDS = (*COLUMNS, ADDRESS_FIELD)
SELECT = ",".join((*COLUMNS, *ADDRESS.values()))

# The dynamics sink's default mapping: store fields to its fields.
DYNAMICS: dict[str, str] = {
    "profile.given_name": "firstname",
    "profile.family_name": "lastname",
    "profile.email": "emailaddress1",
    "profile.phone": "telephone1",
    "profile.postal_address": ADDRESS_FIELD,
}

_LOGICAL_NAME = re.compile(r"[a-z][a-z0-9_]{0,49}")
_READ = {"If-None-Match": "null"}
_JSON = {"Content-Type": "application/json"}


class DynamicsError(RuntimeError):
    """Dataverse refused a request or did not answer. One line, with
    Dataverse's own code and message, never the token."""


def key_literal(value: str) -> str:
    """``value`` as an OData string literal in a URL. Single quotes are
    doubled (filter-rows, "Manage single quotes") and everything else but
    unreserved characters is percent-encoded."""
    return "'" + quote(value.replace("'", "''"), safe="'") + "'"


class DynamicsSink(NoHistory):
    def __init__(
        self,
        org_url: str,
        token: str | BearerToken,
        *,
        subject_column: str = "vrm_subject",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not _LOGICAL_NAME.fullmatch(subject_column):
            raise DynamicsError(
                f"subject_column: {subject_column!r} is not a column's logical name"
            )
        self.api = org_url.rstrip("/") + API
        self.subject_column = subject_column
        self.page_size = PAGE
        # A fixed token, or one taken and taken again (connectors/sinks/crm_auth.py).
        self._auth = token if isinstance(token, BearerToken) else BearerToken(token)
        self._sleep = sleep
        self.http = httpx.Client(
            auth=self._auth,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
            },
            timeout=60,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()
        self._auth.close()

    def _url(self, subject: str) -> str:
        return f"{self.api}/contacts({self.subject_column}={key_literal(subject)})"

    def _send(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            return with_retries(lambda: self.http.request(method, url, **kw), self._sleep)
        except (StoreError, httpx.HTTPError):
            host = urlsplit(self.api).hostname
            raise DynamicsError(f"Dataverse at {host} does not answer") from None
        except CrmAuthError as exc:
            raise DynamicsError(f"Dataverse: {exc}") from None

    def _refusal(self, status: int, content: bytes, doing: str) -> DynamicsError:
        detail = ""
        try:
            error = json.loads(content).get("error")
        except (ValueError, AttributeError):
            error = None
        if isinstance(error, dict):
            detail = f"{error.get('code') or ''} {error.get('message') or ''}"
        detail = self._auth.redact(detail)
        detail = " ".join(detail.split())[:500]
        return DynamicsError(
            f"Dataverse refused to {doing} ({status})" + (f": {detail}" if detail else "")
        )

    def _body(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name, value in fields.items():
            if name == ADDRESS_FIELD:
                parts = value if isinstance(value, Mapping) else {}
                for part, column in ADDRESS.items():
                    body[column] = parts.get(part)
            elif name in COLUMNS:
                body[name] = value
        return body

    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        self._upsert(subject, self._body(fields))

    def _upsert(self, subject: str, body: Mapping[str, Any]) -> None:
        r = self._send("PATCH", self._url(subject), json=body, headers={**_JSON, **_READ})
        if r.status_code != 204:
            raise self._refusal(r.status_code, r.content, "upsert a contact")

    def upsert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Upserts in ``$batch`` change sets of :data:`PER_BATCH`: one
        request where there would be a hundred, which the service
        protection limits count as one. Rows of one subject are merged in
        order first (later fields win), as applying them in turn would
        leave the contact."""
        merged: dict[str, dict[str, Any]] = {}
        for subject, fields in rows:
            merged.setdefault(subject, {}).update(self._body(fields))
        items = list(merged.items())
        if len(items) == 1:
            self._upsert(*items[0])
            return
        for start in range(0, len(items), PER_BATCH):
            self._batch(items[start : start + PER_BATCH])

    def _batch(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        lines = [f"--{batch}", f"Content-Type: multipart/mixed; boundary={changeset}", ""]
        for n, (subject, body) in enumerate(items, 1):
            lines += [
                f"--{changeset}",
                "Content-Type: application/http",
                "Content-Transfer-Encoding: binary",
                f"Content-ID: {n}",
                "",
                f"PATCH {self._url(subject)} HTTP/1.1",
                "Content-Type: application/json",
                "",
                json.dumps(body),
            ]
        lines += [f"--{changeset}--", f"--{batch}--", ""]
        r = self._send(
            "POST",
            f"{self.api}/$batch",
            content="\r\n".join(lines).encode(),
            headers={"Content-Type": f'multipart/mixed; boundary="{batch}"', **_READ},
        )
        answers = _batch_answers(r)
        for status, content in answers:
            if status != 204:
                raise self._refusal(status, content, "upsert contacts")
        if r.status_code != 200:
            raise self._refusal(r.status_code, r.content, "upsert contacts")
        if len(answers) != len(items):
            raise DynamicsError(f"Dataverse answered {len(answers)} of {len(items)} upserts")

    def find(self, subject: str) -> dict[str, Any] | None:
        r = self._send("GET", f"{self._url(subject)}?$select={SELECT}", headers=_READ)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise self._refusal(r.status_code, r.content, "read a contact")
        return _fields(r.json())

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        body = self._body(dict.fromkeys(f for f in fields if f in FIELDS))
        if body:
            r = self._send(
                "PATCH",
                f"{self._url(subject)}?$select={SELECT}",
                json=body,
                headers={**_JSON, "If-Match": "*", "Prefer": "return=representation"},
            )
            if r.status_code == 404:
                return
            if r.status_code != 200:
                raise self._refusal(r.status_code, r.content, "clear a contact's fields")
            left: dict[str, Any] | None = _fields(r.json())
        else:
            left = self.find(subject)
        if left is not None and not any(left.values()):
            self.delete_subject(subject)

    def delete_subject(self, subject: str) -> None:
        r = self._send("DELETE", self._url(subject))
        if r.status_code not in (204, 404):
            raise self._refusal(r.status_code, r.content, "delete a contact")

    def subjects(self) -> list[str]:
        column = self.subject_column
        url: str | None = f"{self.api}/contacts?$select={column}&$filter={column}%20ne%20null"
        headers = {**_READ, "Prefer": f"odata.maxpagesize={self.page_size}"}
        found: list[str] = []
        while url is not None:
            r = self._send("GET", url, headers=headers)
            if r.status_code != 200:
                raise self._refusal(r.status_code, r.content, "list contacts")
            page = r.json()
            for row in page.get("value") or []:
                subject = row.get(column)
                if isinstance(subject, str) and subject:
                    found.append(subject)
            url = page.get("@odata.nextLink")
            # The token goes wherever the link points: only to this API.
            if url is not None and not (isinstance(url, str) and url.startswith(self.api + "/")):
                raise DynamicsError("Dataverse's @odata.nextLink leaves its Web API")
        return sorted(found)


def _fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The sink's fields of a contact row, empty values as None."""
    out: dict[str, Any] = {name: row.get(name) or None for name in COLUMNS}
    address = {part: row[column] for part, column in ADDRESS.items() if row.get(column)}
    out[ADDRESS_FIELD] = address or None
    return out


def _batch_answers(response: httpx.Response) -> list[tuple[int, bytes]]:
    """Each inner response of a ``$batch`` answer, change sets included: its
    status and body. MIME parsing is the ``email`` package's."""
    content_type = response.headers.get("content-type", "")
    if not content_type.startswith("multipart/mixed"):
        return []
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + response.content
    message = email.message_from_bytes(raw, policy=email.policy.HTTP)
    answers = []
    for part in message.walk():
        if part.get_content_type() != "application/http":
            continue
        payload = part.get_payload(decode=True)
        text = payload.replace(b"\r\n", b"\n") if isinstance(payload, bytes) else b""
        head, _, body = text.partition(b"\n\n")
        status = head.split(b"\n", 1)[0].split()
        if len(status) >= 2 and status[1].isdigit():
            answers.append((int(status[1]), body))
    return answers
