"""A small in-memory Dataverse: the ``contacts`` entity set with an
alternate key on one column, behind ``httpx.MockTransport``.

It is built from Microsoft's Web API documentation (the pages named in
connectors/sinks/dynamics.py), not from a live environment. It answers
only what the sink sends, and checks it strictly. Every request must carry
the bearer token and the documented OData headers, and a JSON body its
Content-Type. Alternate-key segments must be OData string literals with
quotes doubled. A body may name only writable contact columns and never
the key. ``@odata.nextLink`` must come back exactly as it was given. A
check the sink breaks fails the test with an AssertionError, or gets
Dataverse's own error answer where the documentation gives one.
"""

from __future__ import annotations

import copy
import email
import email.policy
import json
import uuid
from email.message import Message
from typing import Any
from urllib.parse import unquote

import httpx

ORG = "https://contoso.crm4.dynamics.com"
API = f"{ORG}/api/data/v9.2"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-dataverse-token"
WRITABLE = (
    "firstname",
    "lastname",
    "emailaddress1",
    "telephone1",
    "address1_line1",
    "address1_city",
    "address1_stateorprovince",
    "address1_postalcode",
    "address1_country",
)
# From the contact table's reference (LastName: MaxLength 50).
MAX_LENGTH = {"firstname": 50, "lastname": 50}


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    """Dataverse's error shape (compose-http-requests-handle-errors)."""
    body = {"error": {"code": code, "message": message}}
    return httpx.Response(status, json=body, headers={"OData-Version": "4.0", **headers})


class FakeDataverse:
    def __init__(self, key: str = "vrm_subject", page: int = 5000) -> None:
        self.key = key
        self.page = page  # the most rows a page holds, whatever is preferred
        self.rows: dict[str, dict[str, Any]] = {}  # contactid -> columns
        self.requests: list[httpx.Request] = []
        self.faults: list[httpx.Response] = []  # answered first, one per request
        self.links: dict[str, tuple[int, str]] = {}  # nextLink -> (offset, Prefer)
        self.next_link_base = API

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            return self.faults.pop(0)
        self._check_headers(request)
        path = request.url.raw_path.decode().split("?", 1)[0]
        assert path.startswith("/api/data/v9.2/"), path
        resource = path.removeprefix("/api/data/v9.2/")
        if resource == "$batch":
            assert request.method == "POST", request.method
            return self._batch(request)
        return self._handle(request, resource)

    # -- checks --------------------------------------------------------

    def _check_headers(self, request: httpx.Request) -> None:
        h = request.headers
        assert h.get("authorization") == f"Bearer {TOKEN}", "bearer token"
        assert h.get("accept") == "application/json", h.get("accept")
        assert h.get("odata-maxversion") == "4.0", h.get("odata-maxversion")
        assert h.get("odata-version") == "4.0", h.get("odata-version")
        if request.content and not request.url.raw_path.endswith(b"$batch"):
            assert h.get("content-type") == "application/json", h.get("content-type")

    def _key(self, segment: str) -> str | httpx.Response:
        """The subject named by ``contacts(<segment>)``: ``key='literal'``,
        percent-decoded, quotes inside doubled (filter-rows)."""
        column, _, literal = unquote(segment).partition("=")
        if column != self.key:
            return error(
                400,
                "0x80060888",
                "The key in the request URI is not valid for resource "
                "'Microsoft.Dynamics.CRM.contact'. Ensure that the names and number of key "
                "properties match the declared or alternate key properties for the resource "
                "'Microsoft.Dynamics.CRM.contact'.",
            )
        inner = literal[1:-1]
        unterminated = error(400, "0x80060888", f"There is an unterminated literal in '{literal}'.")
        if len(literal) < 2 or literal[0] != "'" or literal[-1] != "'":
            return unterminated
        if inner.replace("''", "").count("'"):
            return unterminated
        return inner.replace("''", "'")

    def _query(self, request: httpx.Request) -> dict[str, str]:
        raw = request.url.raw_path.decode().partition("?")[2]
        pairs = (p.partition("=") for p in raw.split("&") if p)
        return {unquote(k): unquote(v) for k, _, v in pairs}

    # -- contacts ------------------------------------------------------

    def by_subject(self, subject: str) -> tuple[str, dict[str, Any]] | None:
        for contactid, row in self.rows.items():
            if row.get(self.key) == subject:
                return contactid, row
        return None

    def _select(self, row: dict[str, Any], contactid: str, select: str) -> dict[str, Any]:
        columns = select.split(",")
        for column in columns:
            assert column in (*WRITABLE, self.key), f"$select of {column!r}"
        out = {"@odata.etag": 'W/"1"', **{c: row.get(c) for c in columns}, "contactid": contactid}
        if any(c.startswith("address1_") for c in columns):
            # Documented: asking for a part of an address also returns the composite.
            parts = (row.get(c) for c in WRITABLE if c.startswith("address1_"))
            out["address1_composite"] = "\r\n".join(p for p in parts if p) or None
        return out

    def _handle(self, request: httpx.Request, resource: str) -> httpx.Response:
        query = self._query(request)
        if resource == "contacts":
            assert request.method == "GET", request.method
            return self._list(request, query)
        assert resource.startswith("contacts("), resource
        assert resource.endswith(")"), resource
        subject = self._key(resource.removeprefix("contacts(")[:-1])
        if isinstance(subject, httpx.Response):
            return subject
        found = self.by_subject(subject)
        absent = error(
            404, "0x80040217", "A record with the specified key values does not exist in contact"
        )
        if request.method == "GET":
            assert request.headers.get("if-none-match") == "null"
            if found is None:
                return absent
            return httpx.Response(200, json=self._select(found[1], found[0], query["$select"]))
        if request.method == "DELETE":
            assert not request.content
            if found is None:
                return absent
            del self.rows[found[0]]
            return httpx.Response(204, headers={"OData-Version": "4.0"})
        assert request.method == "PATCH", request.method
        return self._patch(request, subject, found, query)

    def _patch(
        self,
        request: httpx.Request,
        subject: str,
        found: tuple[str, dict[str, Any]] | None,
        query: dict[str, str],
    ) -> httpx.Response:
        body = json.loads(request.content)
        assert isinstance(body, dict), body
        # use-upsert-insert-update-record: leave the key out of the body.
        assert self.key not in body, "the alternate key is in the body"
        for column, value in body.items():
            if column not in WRITABLE:
                return error(
                    400,
                    "0x80060888",
                    f"Could not find a property named '{column}' on type "
                    "'Microsoft.Dynamics.CRM.contact'.",
                )
            limit = MAX_LENGTH.get(column)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                return error(
                    400,
                    "0x80044331",
                    f"A validation error occurred.  The length of the '{column}' attribute of "
                    f"the 'contact' entity exceeded the maximum allowed length of '{limit}'.",
                )
        h = request.headers
        if h.get("if-match") == "*" and found is None:
            return error(404, "", f"contact With Id = {subject} Does Not Exist")
        if h.get("if-none-match") == "*" and found is not None:
            return error(412, "", "A record with matching key values already exists.")
        if found is None:
            contactid = str(uuid.uuid4())
            self.rows[contactid] = {self.key: subject, **body}  # the key, from the URL
            status = 201
        else:
            contactid = found[0]
            self.rows[contactid].update(body)
            status = 200
        if h.get("prefer") == "return=representation":
            row = self._select(self.rows[contactid], contactid, query["$select"])
            return httpx.Response(status, json=row, headers={"OData-Version": "4.0"})
        entity = f"{API}/contacts({self.key}='{subject.replace(chr(39), chr(39) * 2)}')"
        return httpx.Response(204, headers={"OData-Version": "4.0", "OData-EntityId": entity})

    def _list(self, request: httpx.Request, query: dict[str, str]) -> httpx.Response:
        prefer = request.headers.get("prefer", "")
        assert prefer.startswith("odata.maxpagesize="), prefer
        wanted = int(prefer.removeprefix("odata.maxpagesize="))
        assert 0 < wanted <= 5000, wanted
        if "$skiptoken" in query:
            link = str(request.url)
            if link not in self.links:
                return error(400, "0x80040203", "Invalid paging cookie (the link was altered).")
            offset, first_prefer = self.links[link]
            assert prefer == first_prefer, "the same odata.maxpagesize on every page"
        else:
            assert query == {"$select": self.key, "$filter": f"{self.key} ne null"}, query
            offset = 0
        rows = sorted(
            ((cid, r) for cid, r in self.rows.items() if r.get(self.key) is not None),
            key=lambda item: item[0],
        )
        size = min(wanted, self.page)
        body: dict[str, Any] = {
            "@odata.context": f"{API}/$metadata#contacts({self.key})",
            "value": [self._select(r, cid, self.key) for cid, r in rows[offset : offset + size]],
        }
        if offset + size < len(rows):
            # Shaped like the documented paging cookie: already URI-encoded.
            cookie = f"%3Ccookie%20pagenumber=%22{offset // size + 2}%22%20/%3E"
            link = f"{self.next_link_base}/contacts?$select={self.key}&$skiptoken={cookie}"
            self.links[link] = (offset + size, prefer)
            body["@odata.nextLink"] = link
        return httpx.Response(200, json=body, headers={"OData-Version": "4.0"})

    # -- $batch ----------------------------------------------------------

    def _batch(self, request: httpx.Request) -> httpx.Response:
        content_type = request.headers["content-type"]
        assert content_type.startswith('multipart/mixed; boundary="batch_'), content_type
        raw = f"Content-Type: {content_type}\r\n\r\n".encode() + request.content
        message = email.message_from_bytes(raw, policy=email.policy.HTTP)
        assert not message.defects, message.defects
        [changeset] = parts_of(message)
        assert changeset.get_content_type() == "multipart/mixed"
        assert (changeset.get_boundary() or "").startswith("changeset_")
        parts = parts_of(changeset)
        assert 0 < len(parts) <= 1000, len(parts)
        saved = copy.deepcopy(self.rows)
        answers = []
        for part in parts:
            assert part.get_content_type() == "application/http"
            assert part["Content-Transfer-Encoding"] == "binary"
            assert part["Content-ID"], "Content-ID in a change set"
            inner = self._inner(request, payload_of(part))
            path = inner.url.raw_path.decode().split("?")[0]
            answer = self._handle(inner, path.removeprefix("/api/data/v9.2/"))
            if answer.status_code >= 400:
                # A change set is one transaction: nothing of it stays. The
                # batch answers with the first failure (execute-batch-operations).
                self.rows = saved
                return _multipart(answer.status_code, [(None, answer)])
            answers.append((part["Content-ID"], answer))
        return _multipart(200, answers, changeset=True)

    def _inner(self, outer: httpx.Request, text: bytes) -> httpx.Request:
        head, _, body = text.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode().split("\r\n")
        method, url, version = request_line.split(" ")
        assert version == "HTTP/1.1", request_line
        headers = dict(line.split(": ", 1) for line in header_lines)
        assert headers == {"Content-Type": "application/json"}, headers
        for name in ("Authorization", "Accept", "OData-MaxVersion", "OData-Version"):
            headers[name] = outer.headers[name]
        return httpx.Request(method, url, headers=headers, content=body)


def parts_of(message: Message) -> list[Message]:
    """The parts of a multipart message."""
    payload = message.get_payload()
    assert isinstance(payload, list), "a multipart body"
    parts = [p for p in payload if isinstance(p, Message)]
    assert len(parts) == len(payload), payload
    return parts


def payload_of(part: Message) -> bytes:
    """The bytes of a part, as sent (Content-Transfer-Encoding: binary)."""
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes), type(payload)
    return payload


def _multipart(
    status: int, answers: list[tuple[str | None, httpx.Response]], changeset: bool = False
) -> httpx.Response:
    batch, inner = f"batchresponse_{uuid.uuid4()}", f"changesetresponse_{uuid.uuid4()}"
    boundary = inner if changeset else batch
    lines = []
    if changeset:
        lines += [f"--{batch}", f"Content-Type: multipart/mixed; boundary={inner}", ""]
    for content_id, answer in answers:
        lines += [f"--{boundary}", "Content-Type: application/http"]
        lines += ["Content-Transfer-Encoding: binary"]
        lines += [f"Content-ID: {content_id}"] if content_id else []
        lines += ["", f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}"]
        lines += [f"{k}: {v}" for k, v in answer.headers.items() if k != "content-length"]
        lines += ["", answer.content.decode()]
    if changeset:
        lines += [f"--{inner}--"]
    lines += [f"--{batch}--", ""]
    return httpx.Response(
        status,
        content="\r\n".join(lines).encode(),
        headers={"Content-Type": f"multipart/mixed; boundary={batch}", "OData-Version": "4.0"},
    )
