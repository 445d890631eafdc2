"""A fake of the Salesforce REST endpoints the salesforce sink uses, in
memory, behind ``httpx.MockTransport``.

Written from Salesforce's documentation (the pages named in
connectors/sinks/salesforce.py), not from the sink, and never checked
against a live org. It checks what the documentation asks of a request
(method, path, ``Authorization: Bearer``, JSON bodies, at most 200 records a
collection, ``attributes.type`` on each, SOQL string literals escaped) and
answers as the documentation shows: errors as a JSON array of
``{"message", "errorCode", "fields"}``, per-record results of a collection
with ``statusCode`` errors, queries a page at a time with
``nextRecordsUrl``. What it does not model it refuses, saying so.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx

HOST = "acme.my.salesforce.com"
INSTANCE_URL = f"https://{HOST}"
TOKEN = "00DFAKE!AQ.fake-access-token"
FIELDS = (
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "MailingStreet",
    "MailingCity",
    "MailingState",
    "MailingPostalCode",
    "MailingCountry",
    "Title",  # one the vendor's staff keep, that the sink never writes
)
_SOQL = re.compile(
    r"^SELECT (?P<fields>\w+(?:, \w+)*) FROM (?P<object>\w+)"
    r"(?: WHERE (?P<field>\w+) (?P<op>=|!=) (?P<value>null|'(?:[^'\\]|\\.)*'))?$"
)
# SOQL and SOSL Reference, "Quoted String Escape Sequences".
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json=[{"message": message, "errorCode": code, "fields": fields or []}]
    )


class Refused(Exception):
    def __init__(self, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields or []


def unescape(literal: str) -> str:
    """A SOQL string literal's value; a backslash before anything the
    reference does not list is an error there, and here."""
    out, chars = [], iter(literal[1:-1])
    for c in chars:
        if c != "\\":
            out.append(c)
            continue
        following = next(chars)
        if following.lower() in _ESCAPES:
            out.append(_ESCAPES[following.lower()])
        elif following == "u":
            out.append(chr(int("".join(next(chars) for _ in range(4)), 16)))
        else:
            raise Refused("MALFORMED_QUERY", f"invalid escape sequence \\{following}")
    return "".join(out)


class FakeSalesforce:
    def __init__(
        self,
        *,
        subject_field: str = "Vrm_Subject__c",
        api_version: str = "v62.0",
        page_size: int = 2000,
        case_sensitive: bool = True,
    ) -> None:
        self.subject_field = subject_field
        self.api = f"/services/data/{api_version}"
        self.page_size = page_size
        # Unique, case sensitive, as the sink asks; False models a field
        # defined otherwise, which SOQL compares without case.
        self.case_sensitive = case_sensitive
        self.contacts: dict[str, dict[str, Any]] = {}
        self.recycle_bin: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.queued: list[httpx.Response] = []  # answered first, in order
        self._ids = itertools.count(1)
        self._cursors: dict[str, tuple[list[dict[str, Any]], int]] = {}
        # The access tokens the org takes now; the client credentials of
        # its external client app, and the tokens issued for them.
        self.valid = {TOKEN}
        self.consumer = ("3MVGfake.consumer-key", "fake-consumer-secret")
        self.issued: list[str] = []
        self.transport = httpx.MockTransport(self.handle)

    def expire_sessions(self) -> None:
        """Every access token stops working, as at a session timeout."""
        self.valid.clear()

    def add(self, **fields: Any) -> str:
        """A Contact created in the org some other way."""
        record_id = f"003FAKE{next(self._ids):011d}"
        self.contacts[record_id] = {"Id": record_id, **fields}
        return record_id

    def by_subject(self, subject: str) -> dict[str, Any] | None:
        return next(
            (c for c in self.contacts.values() if c.get(self.subject_field) == subject), None
        )

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests if r.content]

    # Routing.

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.scheme != "https" or request.url.host != HOST:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        if request.url.path == "/services/oauth2/token":
            return self._token(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.valid:
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if self.queued:
            return self.queued.pop(0)
        raw = request.url.raw_path.decode().split("?", 1)[0]
        if not raw.startswith(self.api + "/"):
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        parts = [unquote(p) for p in raw[len(self.api) + 1 :].split("/")]
        try:
            return self._route(request, parts)
        except Refused as exc:
            return error(400, exc.code, exc.message, exc.fields)

    def _token(self, request: httpx.Request) -> httpx.Response:
        """The OAuth 2.0 client credentials flow: a form POST with
        grant_type, client_id and client_secret; the answer carries
        access_token and instance_url, and no expires_in."""
        form = dict(parse_qsl(request.content.decode()))
        if request.method != "POST" or form.get("grant_type") != "client_credentials":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != self.consumer:
            body = {"error": "invalid_client", "error_description": "invalid client credentials"}
            return httpx.Response(400, json=body)
        token = f"00DFAKE!AQ.issued-{len(self.issued) + 1}"
        self.issued.append(token)
        self.valid.add(token)
        return httpx.Response(
            200,
            json={
                "access_token": token,
                "signature": "fake-signature",
                "instance_url": INSTANCE_URL,
                "id": f"https://login.salesforce.com/id/00DFAKE/005FAKE{len(self.issued)}",
                "token_type": "Bearer",
                "issued_at": "1765100000000",
            },
        )

    def _route(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        method = request.method
        if method == "GET" and parts == ["query"]:
            if set(request.url.params) != {"q"}:
                raise Refused("MALFORMED_QUERY", "a query takes one parameter, q")
            return self._query(request.url.params["q"])
        if method == "GET" and len(parts) == 2 and parts[0] == "query":
            if request.url.params:
                raise Refused("INVALID_QUERY_LOCATOR", "nextRecordsUrl takes no parameters")
            return self._page(parts[1])
        if parts[:2] == ["sobjects", "Contact"] and method in ("PATCH", "DELETE"):
            if method == "PATCH" and len(parts) == 4:
                return self._upsert_one(parts[2], parts[3], self._json(request))
            if method == "PATCH" and len(parts) == 3:
                return self._update(parts[2], self._json(request))
            if method == "DELETE" and len(parts) == 3:
                return self._delete(parts[2])
        if (
            method == "PATCH"
            and parts[:3] == ["composite", "sobjects", "Contact"]
            and len(parts) == 4
        ):
            return self._upsert_collection(parts[3], self._json(request))
        return error(404, "NOT_FOUND", "The requested resource does not exist")

    def _json(self, request: httpx.Request) -> Any:
        if request.headers.get("content-type") != "application/json":
            raise Refused("UNSUPPORTED_MEDIA_TYPE", "the body must be application/json")
        try:
            return json.loads(request.content)
        except ValueError:
            raise Refused("JSON_PARSER_ERROR", "the body is not JSON") from None

    # Records.

    def _same(self, a: Any, b: str) -> bool:
        if not isinstance(a, str):
            return False
        return a == b if self.case_sensitive else a.casefold() == b.casefold()

    def _checked(self, fields: Any, *, body_may_name_subject: bool) -> dict[str, Any]:
        if not isinstance(fields, dict):
            raise Refused("JSON_PARSER_ERROR", "a record is a JSON object")
        for name, value in fields.items():
            if name in ("Id",) or (name == self.subject_field and not body_may_name_subject):
                raise Refused("INVALID_FIELD", f"{name} is not allowed in the request body", [name])
            if name not in FIELDS and name != self.subject_field:
                raise Refused(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type Contact"
                )
            if value is not None and not isinstance(value, str):
                raise Refused("JSON_PARSER_ERROR", f"{name} takes text", [name])
        email = fields.get("Email")
        if email is not None and "@" not in email:
            raise Refused(
                "INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}", ["Email"]
            )
        if "LastName" in fields and not fields["LastName"]:
            raise Refused(
                "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]
            )
        return fields

    def _put(self, field: str, value: str, fields: dict[str, Any]) -> tuple[str, bool]:
        """Upsert one record by external ID: (its Id, created)."""
        if field != self.subject_field:
            raise Refused("NOT_FOUND", f"Provided external ID field does not exist: {field}")
        found = [c for c in self.contacts.values() if self._same(c.get(field), value)]
        if len(found) > 1:
            raise Refused("MULTIPLE_CHOICES", "more than one record holds this external ID")
        if found:
            found[0].update(fields)
            return found[0]["Id"], False
        if not fields.get("LastName"):
            raise Refused(
                "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]
            )
        return self.add(**fields, **{field: value}), True

    def _upsert_one(self, field: str, value: str, body: Any) -> httpx.Response:
        fields = self._checked(body, body_may_name_subject=False)
        try:
            record_id, created = self._put(field, value, fields)
        except Refused as exc:
            if exc.code != "MULTIPLE_CHOICES":
                raise
            # 300, with the matching records' URLs.
            urls = [
                f"{self.api}/sobjects/Contact/{c['Id']}"
                for c in self.contacts.values()
                if self._same(c.get(field), value)
            ]
            return httpx.Response(300, json=urls)
        result = {"id": record_id, "success": True, "errors": [], "created": created}
        return httpx.Response(201 if created else 200, json=result)

    def _upsert_collection(self, field: str, body: Any) -> httpx.Response:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise Refused("JSON_PARSER_ERROR", "the body is {allOrNone, records}")
        if set(body) - {"allOrNone", "records"}:
            raise Refused("JSON_PARSER_ERROR", f"unexpected keys {sorted(set(body))}")
        if body.get("allOrNone", False) is not False:
            raise Refused("INVALID_INPUT", "this fake does not model allOrNone true")
        records = body["records"]
        if not 1 <= len(records) <= 200:
            raise Refused("EXCEEDED_ID_LIMIT", "record limit reached: at most 200 records")
        seen: set[str] = set()
        results = []
        for record in records:
            if not isinstance(record, dict) or record.get("attributes") != {"type": "Contact"}:
                raise Refused("INVALID_TYPE", "each record needs attributes with type Contact")
            fields = {k: v for k, v in record.items() if k != "attributes"}
            value = fields.pop(field, None)
            try:
                if not isinstance(value, str) or not value:
                    raise Refused("MISSING_ARGUMENT", f"{field} not specified", [field])
                if value in seen:
                    raise Refused(
                        "DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}"
                    )
                seen.add(value)
                record_id, created = self._put(
                    field, value, self._checked(fields, body_may_name_subject=False)
                )
                results.append({"id": record_id, "success": True, "errors": [], "created": created})
            except Refused as exc:
                failed = {"statusCode": exc.code, "message": exc.message, "fields": exc.fields}
                results.append({"id": None, "success": False, "errors": [failed]})
        return httpx.Response(200, json=results)

    def _update(self, record_id: str, body: Any) -> httpx.Response:
        fields = self._checked(body, body_may_name_subject=True)
        if record_id not in self.contacts:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        self.contacts[record_id].update(fields)
        return httpx.Response(204)

    def _delete(self, record_id: str) -> httpx.Response:
        if record_id in self.recycle_bin:
            return error(404, "ENTITY_IS_DELETED", "entity is deleted")
        if record_id not in self.contacts:
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        self.recycle_bin[record_id] = self.contacts.pop(record_id)
        return httpx.Response(204)

    # Queries.

    def _query(self, soql: str) -> httpx.Response:
        match = _SOQL.match(soql)
        if match is None:
            raise Refused("MALFORMED_QUERY", "unexpected token in the query")
        if match["object"] != "Contact":
            raise Refused("INVALID_TYPE", f"sObject type '{match['object']}' is not supported")
        selected = match["fields"].split(", ")
        for name in [*selected, match["field"] or "Id"]:
            if name not in (*FIELDS, "Id", self.subject_field):
                raise Refused("INVALID_FIELD", f"No such column '{name}' on entity 'Contact'")
        rows = list(self.contacts.values())
        if match["field"]:
            name, value = match["field"], match["value"]
            if value == "null":
                rows = [r for r in rows if (r.get(name) is None) == (match["op"] == "=")]
            else:
                wanted = unescape(value)
                rows = [r for r in rows if self._same(r.get(name), wanted) == (match["op"] == "=")]
        records = [
            {
                "attributes": {"type": "Contact", "url": f"{self.api}/sobjects/Contact/{r['Id']}"},
                **{f: r.get(f) for f in selected},
            }
            for r in rows
        ]
        return self._answer(records, len(records))

    def _answer(self, records: list[dict[str, Any]], total: int) -> httpx.Response:
        body: dict[str, Any] = {"totalSize": total, "done": len(records) <= self.page_size}
        if not body["done"]:
            locator = f"01gFAKE{next(self._ids):08d}-{self.page_size}"
            self._cursors[locator] = (records[self.page_size :], total)
            body["nextRecordsUrl"] = f"{self.api}/query/{locator}"
        body["records"] = records[: self.page_size]
        return httpx.Response(200, json=body)

    def _page(self, locator: str) -> httpx.Response:
        if locator not in self._cursors:
            raise Refused("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._answer(*self._cursors.pop(locator))
