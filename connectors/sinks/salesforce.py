"""The ``salesforce`` sink: Contacts in a Salesforce org, through its REST API.

Each subject is one Contact whose external ID field ``subject_field``
(``Vrm_Subject__c`` by default) holds the pairwise subject. The operator
defines that field on Contact as Text, External ID and Unique, case
sensitive: the subjects are base64url, so case tells two apart. Writes are
upserts on that field; reads are SOQL queries on it, kept to the records
whose field equals the subject exactly (a field that is not unique and case
sensitive compares without case in SOQL).

Sink fields are Contact fields: ``FirstName``, ``LastName``, ``Email``,
``Phone``, ``MailingStreet``, ``MailingCity``, ``MailingState``,
``MailingPostalCode``, ``MailingCountry``, and ``MailingAddress`` (a postal
address object, spread over the five Mailing fields). Any other field is
dropped before a request is built. Salesforce requires ``LastName``: one the
customer did not share is written as :data:`NOT_SHARED`, never guessed; an
upsert that does not name it sends it only when Salesforce says a new
Contact lacks it, so a Contact's existing last name is not overwritten.
Salesforce has no place here for purchase history: the sink holds no events.

Built from Salesforce's documentation, not tried against a live org
(tests/connectors/fake_salesforce.py is a fake built from the same pages).
What it relies on, from the REST API Developer Guide unless named:

- ``Authorization: Bearer <token>`` against the org's instance URL, under
  ``/services/data/vXX.X``.
- Upsert by external ID: ``PATCH .../sobjects/Contact/<field>/<value>``,
  the field not repeated in the body; 201 when created, 200 (``created``
  false, API 46.0 and later) or 204 when updated; 300 when the value matches
  several records.
- sObject Collections upsert (API 46.0 and later): ``PATCH
  .../composite/sobjects/Contact/<field>`` with ``allOrNone`` and
  ``records``, each carrying ``attributes: {"type": "Contact"}``; at most 200
  records; 200 OK with one result per record, in order: ``id``,
  ``success``, ``errors`` (``statusCode``, ``message``, ``fields``),
  ``created``.
- Query: ``GET .../query?q=<SOQL>`` answers ``totalSize``, ``done``,
  ``records`` and, while not done, ``nextRecordsUrl``, fetched as it is.
- SOQL (SOQL and SOSL Reference): ``'`` and ``\\`` are reserved in string
  literals and escaped with a backslash, as are newline, return, tab, bell,
  form feed and ``"``; string comparisons are case sensitive only on unique,
  case-sensitive fields.
- Update by Id: ``PATCH .../sobjects/Contact/<Id>``; delete:
  ``DELETE .../sobjects/Contact/<Id>``, 204. Deleted records stay in the
  org's Recycle Bin up to 15 days (SOAP API Developer Guide,
  emptyRecycleBin()).
- Errors: a JSON array of ``{"message", "errorCode", "fields"}``; 401 for
  an expired or bad token; 403 ``REQUEST_LIMIT_EXCEEDED`` for the org's API
  limits; 503 when Salesforce is down or overloaded.
- Contact's ``LastName`` is required; its Mailing fields are text.

Not in those pages: that JSON ``null`` clears a field (the SOAP API's way is
``fieldsToNull``); REST clients (jsforce, the Force.com Toolkit for .NET)
send ``null`` and report the field cleared.

Requests meeting 429, a 5xx, 403 ``REQUEST_LIMIT_EXCEEDED`` or no answer are
tried again (:func:`connectors.store.with_retries`): the org's concurrent
request limit frees within seconds; its daily limit does not, and then the
error names it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from connectors.config import LOOPBACK_HOSTS
from connectors.sinks import NoHistory
from connectors.sinks.crm_auth import BearerToken, CrmAuthError
from connectors.store import StoreError, with_retries

NOT_SHARED = "(not shared)"
BATCH = 200  # records per sObject Collections request, Salesforce's most
CONTACT = "Contact"
TEXT = ("FirstName", "Email", "Phone")
# Salesforce's Contact fields for the parts of a postal address.
ADDRESS = {
    "street_address": "MailingStreet",
    "locality": "MailingCity",
    "region": "MailingState",
    "postal_code": "MailingPostalCode",
    "country": "MailingCountry",
}
WRITTEN = ("FirstName", "LastName", "Email", "Phone", *ADDRESS.values())

# The store's fields to this sink's, by default.
SALESFORCE: dict[str, str] = {
    "profile.given_name": "FirstName",
    "profile.family_name": "LastName",
    "profile.email": "Email",
    "profile.phone": "Phone",
    "profile.postal_address": "MailingAddress",
}

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_VERSION = re.compile(r"^v[0-9]+\.[0-9]$")
_SOQL_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\b": "\\b",
        "\f": "\\f",
    }
)


class SalesforceError(RuntimeError):
    """Salesforce refused a request, or did not answer (one line, with its
    errorCode and message, never the token)."""


def soql_string(value: str) -> str:
    """``value`` as a SOQL string literal, quotes included."""
    return "'" + value.translate(_SOQL_ESCAPES) + "'"


def _over_limit(response: httpx.Response) -> bool:
    return response.status_code == 403 and any(
        e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED" for e in _errors(response)
    )


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def _lacks_last_name(errors: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        (e.get("errorCode") or e.get("statusCode")) == "REQUIRED_FIELD_MISSING"
        and "LastName" in (e.get("fields") or [])
        for e in errors
    )


class SalesforceSink(NoHistory):
    def __init__(
        self,
        instance_url: str,
        token: str | BearerToken,
        *,
        api_version: str = "v62.0",
        subject_field: str = "Vrm_Subject__c",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = httpx.URL(instance_url)
        if url.scheme != "https" and not (url.scheme == "http" and url.host in LOOPBACK_HOSTS):
            raise SalesforceError("instance_url: the token goes to Salesforce over https only")
        if not _VERSION.match(api_version):
            raise SalesforceError(f"api_version: {api_version!r} is not like 'v62.0'")
        # It goes into SOQL and URL paths unquoted: an API name, nothing else.
        if not _API_NAME.match(subject_field):
            raise SalesforceError(f"subject_field: {subject_field!r} is not a field's API name")
        # A fixed token, or one taken and taken again (connectors/sinks/crm_auth.py).
        self._auth = token if isinstance(token, BearerToken) else BearerToken(token)
        self.http = httpx.Client(
            base_url=str(url).rstrip("/"),
            auth=self._auth,
            timeout=30,
            transport=transport,
            follow_redirects=False,
        )
        self.api = f"/services/data/{api_version}"
        self.subject_field = subject_field
        self._sleep = sleep

    def close(self) -> None:
        self.http.close()
        self._auth.close()

    # Requests and their answers.

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return with_retries(
                lambda: self.http.request(method, path, **kw), self._sleep, also=_over_limit
            )
        except StoreError:
            raise SalesforceError("Salesforce does not answer") from None
        except CrmAuthError as exc:
            raise SalesforceError(f"Salesforce: {exc}") from None
        except httpx.HTTPError as exc:
            raise SalesforceError(f"Salesforce does not answer ({type(exc).__name__})") from None

    def _line(self, text: str, sent: Iterable[Any] = ()) -> str:
        """One line, never the token, nor a value sent (Salesforce's messages
        may echo them: "invalid email address: ...")."""
        text = self._auth.redact(text)
        values = {v for v in sent if isinstance(v, str) and len(v) >= 3 and v != NOT_SHARED}
        for value in sorted(values, key=len, reverse=True):
            text = text.replace(value, "[value]")
        return " ".join(text.split())

    def _refused(
        self, response: httpx.Response, doing: str, sent: Iterable[Any] = ()
    ) -> SalesforceError:
        errors = _errors(response)
        detail = ""
        if errors:
            first = errors[0]
            detail = (
                f": {first.get('errorCode') or first.get('statusCode')}: {first.get('message')}"
            )
            if len(errors) > 1:
                detail += f" (and {len(errors) - 1} more)"
        status = response.status_code
        return SalesforceError(
            self._line(f"Salesforce refused to {doing} ({status}){detail}", sent)
        )

    def _json(self, response: httpx.Response, doing: str) -> Any:
        if response.status_code != 200:
            raise self._refused(response, doing)
        try:
            return response.json()
        except ValueError:
            raise SalesforceError(f"Salesforce's answer to {doing} is not JSON") from None

    def _query(self, soql: str) -> Iterator[dict[str, Any]]:
        """The records a SOQL query finds, page after page."""
        body = self._json(self._send("GET", f"{self.api}/query", params={"q": soql}), "query")
        while True:
            if not isinstance(body, dict):
                raise SalesforceError("Salesforce's answer to a query is not a query result")
            yield from (r for r in body.get("records") or [] if isinstance(r, dict))
            following = body.get("nextRecordsUrl")
            if body.get("done", True) or not following:
                return
            # Relative to the instance, under the API: anything else would
            # take the token somewhere else.
            page = httpx.URL(str(following))
            if page.scheme or page.host or not page.path.startswith(f"{self.api}/query/"):
                raise SalesforceError("Salesforce answered a query with a strange nextRecordsUrl")
            body = self._json(self._send("GET", str(following)), "query")

    # Fields.

    def _body(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Contact fields of the sink fields; the rest dropped."""
        body: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "MailingAddress":
                parts = value if isinstance(value, Mapping) else {}
                for part, field in ADDRESS.items():
                    body[field] = parts.get(part) or None
            elif name == "LastName":
                body[name] = value or NOT_SHARED
            elif name in TEXT or name in ADDRESS.values():
                body[name] = value if value != "" else None
        return body

    def _records(self, subject: str) -> list[dict[str, Any]]:
        """The Contacts holding exactly this subject."""
        # SOQL, not SQL: the field is an API name (checked), the subject
        # a literal escaped as the SOQL reference says.
        soql = (
            f"SELECT Id, {self.subject_field}, {', '.join(WRITTEN)} FROM {CONTACT} "  # noqa: S608
            f"WHERE {self.subject_field} = {soql_string(subject)}"
        )
        return [r for r in self._query(soql) if r.get(self.subject_field) == subject]

    # The protocol.

    def upsert(self, subject: str, fields: Mapping[str, Any]) -> None:
        body = self._body(fields)
        if not body:
            return
        path = f"{self.api}/sobjects/{CONTACT}/{self.subject_field}/{quote(subject, safe='')}"
        r = self._send("PATCH", path, json=body)
        if r.status_code == 400 and "LastName" not in body and _lacks_last_name(_errors(r)):
            r = self._send("PATCH", path, json={**body, "LastName": NOT_SHARED})
        if r.status_code == 300:
            raise SalesforceError(
                f"several Salesforce contacts hold the subject {subject}: "
                f"{self.subject_field} must be unique"
            )
        if r.status_code not in (200, 201, 204):
            raise self._refused(r, "upsert a contact", body.values())

    def upsert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """Upsert in sObject Collections requests of up to 200 Contacts.
        A subject named twice is sent once, its fields merged in order
        (upserts of one subject compose), since one request may not name an
        external ID twice. Contacts Salesforce refuses do not stop the
        others; the refusal is raised after every batch was sent."""
        merged: dict[str, dict[str, Any]] = {}
        for subject, fields in rows:
            merged.setdefault(subject, {}).update(self._body(fields))
        records = [
            {"attributes": {"type": CONTACT}, **body, self.subject_field: subject}
            for subject, body in merged.items()
            if body
        ]
        refused: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for start in range(0, len(records), BATCH):
            batch = records[start : start + BATCH]
            results = self._collection(batch)
            new = [
                i
                for i, (record, result) in enumerate(zip(batch, results, strict=True))
                if not result.get("success")
                and "LastName" not in record
                and _lacks_last_name(result.get("errors") or [])
            ]
            if new:
                again = self._collection([{**batch[i], "LastName": NOT_SHARED} for i in new])
                for i, answer in zip(new, again, strict=True):
                    results[i] = answer
            refused += [
                (record, result)
                for record, result in zip(batch, results, strict=True)
                if not result.get("success")
            ]
        if refused:
            sent, failed = refused[0]
            first = (failed.get("errors") or [{}])[0]
            code = first.get("statusCode") or first.get("errorCode")
            subject = sent[self.subject_field]
            raise SalesforceError(
                self._line(
                    f"Salesforce refused {len(refused)} of {len(records)} contacts; "
                    f"the first, {subject}: {code}: {first.get('message')}",
                    (v for k, v in sent.items() if k != self.subject_field),
                )
            )

    def _collection(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not records:
            return []
        path = f"{self.api}/composite/sobjects/{CONTACT}/{self.subject_field}"
        r = self._send("PATCH", path, json={"allOrNone": False, "records": records})
        results = self._json(r, "upsert contacts")
        if not isinstance(results, list) or len(results) != len(records):
            raise SalesforceError("Salesforce answered a collection with results that do not match")
        return [x if isinstance(x, dict) else {} for x in results]

    def find(self, subject: str) -> dict[str, Any] | None:
        records = self._records(subject)
        if not records:
            return None
        contact = records[0]
        address = {part: contact.get(field) for part, field in ADDRESS.items()}
        last = contact.get("LastName")
        return {
            "FirstName": contact.get("FirstName") or None,
            "LastName": None if last == NOT_SHARED else last or None,
            "Email": contact.get("Email") or None,
            "Phone": contact.get("Phone") or None,
            "MailingAddress": {k: v for k, v in address.items() if v} or None,
        }

    def delete_fields(self, subject: str, fields: Sequence[str]) -> None:
        body = self._body(dict.fromkeys(fields))
        for contact in self._records(subject):
            after = {field: contact.get(field) for field in WRITTEN} | body
            if not any(v for k, v in after.items() if not (k == "LastName" and v == NOT_SHARED)):
                self._delete(str(contact["Id"]))
            elif body:
                # By Id, not by subject: an upsert would bring back a
                # Contact deleted meanwhile.
                r = self._send("PATCH", f"{self.api}/sobjects/{CONTACT}/{contact['Id']}", json=body)
                if r.status_code not in (200, 204):
                    raise self._refused(r, "clear a contact's fields", body.values())

    def delete_subject(self, subject: str) -> None:
        for contact in self._records(subject):
            self._delete(str(contact["Id"]))

    def _delete(self, record_id: str) -> None:
        r = self._send("DELETE", f"{self.api}/sobjects/{CONTACT}/{quote(record_id, safe='')}")
        if r.status_code not in (200, 204, 404):  # 404: already gone
            raise self._refused(r, "delete a contact")

    def subjects(self) -> list[str]:
        field = self.subject_field  # an API name (checked)
        soql = f"SELECT {field} FROM {CONTACT} WHERE {field} != null"  # noqa: S608
        found = (r.get(self.subject_field) for r in self._query(soql))
        return sorted({s for s in found if isinstance(s, str) and s})
