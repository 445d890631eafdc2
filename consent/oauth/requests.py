"""The request adapter: an Authlib ``OAuth2Request`` built from what a
Starlette route or the vendor endpoints read.

Authlib's Flask and Django integrations merge the query and the body, so a
token-endpoint parameter could come from the URL (OAUTH.md). Here the
parameters come from exactly one place, the query for GET and the form for
POST; empty values count as absent and repeated ones are noted, so the
endpoints can refuse them (RFC 6749 3.1).

The request also carries the transaction its callbacks run in
(:attr:`Request.tx`): Authlib hands its hooks the request and nothing
else, so that is where they find the database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from authlib.oauth2.rfc6749 import InsecureTransportError, OAuth2Payload, OAuth2Request
from starlette.datastructures import Headers

from consent.grants.models import Grant
from consent.scopes import DataRequest
from vrm.accounts.models import Customer
from vrm.storage.transaction import Transaction


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        datalist: defaultdict[str, list[str]] = defaultdict(list)
        sent = 0
        for key, value in items:
            if value != "":  # RFC 6749 3.1: empty means omitted
                datalist[key].append(value)
                sent += 1
        self._datalist = datalist
        self._data = {k: v[0] for k, v in datalist.items()}
        # RFC 6749 3.1: "Request and response parameters MUST NOT be
        # included more than once." The first one sent, if any was; the
        # endpoints refuse the request (``data`` holds only first values).
        self.repeated: str | None = None
        if sent != len(datalist):
            self.repeated = next(k for k, v in datalist.items() if len(v) > 1)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


@lru_cache(maxsize=16)
def _check_transport(origin: str) -> None:
    InsecureTransportError.check(origin + "/")


# What OAuth2Request.__init__ sets on every request, as it sets it.
_REQUEST_DEFAULTS = vars(OAuth2Request("POST", "https://issuer.invalid/"))


class Request(OAuth2Request):
    """An OAuth request whose parameters come from exactly one place: the
    query for GET, the form for POST."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers,
        items: list[tuple[str, str]],
        tx: Transaction | None = None,
    ):
        # As OAuth2Request.__init__, but its check that the URL is https (or
        # loopback) runs once per origin, not on each request: it read the
        # environment and parsed the URL and its IP address every time, a
        # measurable share of a token request. Our URLs all start with the
        # issuer.
        scheme, _, rest = uri.partition("://")
        _check_transport(f"{scheme}://{rest.partition('/')[0].partition('?')[0]}")
        self.__dict__.update(_REQUEST_DEFAULTS)
        self.method = method
        self.uri = uri
        self.headers = headers
        self.payload = _Payload(items)
        # Set here by the pages; by the group commit at the vendor endpoints,
        # once the request's turn comes (consent/oauth/endpoints.py).
        self._tx = tx
        # Set by the consent page: what the customer allowed.
        self.decision: Decision | None = None
        self.data_request: DataRequest | None = None
        # OIDC Core 3.1.2.1 max_age, in seconds, once validated.
        self.max_age: int | None = None

    @property
    def tx(self) -> Transaction:
        """The transaction the request's callbacks run in."""
        tx = self._tx
        if tx is None:
            raise RuntimeError("an OAuth request handled outside a transaction")
        return tx

    @tx.setter
    def tx(self, tx: Transaction) -> None:
        self._tx = tx

    def parameters(self) -> list[tuple[str, str]]:
        """Every parameter, repeated ones included, in order of name."""
        return [(k, v) for k, values in self.payload.datalist.items() for v in values]

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data if self.method == "POST" else {}


@dataclass
class Decision:
    """The customer's answer on the consent page (or an existing grant)."""

    customer: Customer
    grant: Grant
    auth_time: datetime
