"""Signed consent receipts: the customer downloads one, anyone holding the
server's JWKS can check it, and a changed byte fails the check."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.conftest import Person
from tests.consent.conftest import Vendor, tokens_for

GRANTS = "/api/v1/me/grants"


def _verify(vendor: Vendor, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(vendor.client.get("/oauth/jwks").json())
    obj = jws.deserialize_compact(token, keys, algorithms=["ES256"])
    assert obj.protected["typ"] == "consent-receipt+jwt"
    body: dict[str, Any] = json.loads(obj.payload)
    return body


def test_a_receipt_is_signed_and_says_what_was_agreed(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "profile.email:read preferences:read")
    r = ana.client.get(f"{GRANTS}/{token['grant_id']}/receipt")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/jose"
    record = _verify(vendor, r.text)
    assert record["record_id"] == token["grant_id"]
    assert record["schema_basis"] == "ISO/IEC TS 27560:2023"
    assert record["data_controller"]["id"] == vendor.client_id
    assert record["data_controller"]["name"] == "Bertrand Books"
    assert record["data_subject"]["id"] == vendor.introspect(token["access_token"])["sub"]
    assert record["processing"]["purpose"] == "dpv:ServiceProvision"
    assert record["processing"]["legal_basis"] == "dpv:Consent"
    assert [d["scope"] for d in record["processing"]["personal_data"]] == [
        "preferences:read",
        "profile.email:read",
    ]
    assert record["consent"]["status"] == "dpv:ConsentGiven"
    assert [h["event"] for h in record["history"]] == ["granted"]
    # The receipt names the customer only as this vendor knows them.
    assert ana.id not in json.dumps(record)
    assert ana.email not in json.dumps(record)


def test_a_receipt_records_every_later_change(ana: Person, vendor: Vendor) -> None:
    token = tokens_for(ana, vendor, "profile.email:read preferences:read")
    url = f"{GRANTS}/{token['grant_id']}"
    ana.client.patch(url, json={"scopes": ["profile.email:read"]})
    ana.client.delete(url)
    record = _verify(vendor, ana.client.get(f"{url}/receipt").text)
    assert [h["event"] for h in record["history"]] == ["granted", "narrowed", "revoked"]
    assert record["consent"]["status"] == "dpv:ConsentWithdrawn"
    assert record["consent"]["withdrawn_by"] == "customer"


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_tampered_receipt_fails_verification(ana: Person, vendor: Vendor, part: int) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")
    receipt = ana.client.get(f"{GRANTS}/{token['grant_id']}/receipt").text
    pieces = receipt.split(".")
    if part == 1:
        record = json.loads(jws.extract_compact(receipt.encode()).payload)
        record["processing"]["personal_data"].append({"scope": "history:read"})
        from joserfc.util import urlsafe_b64encode

        pieces[1] = urlsafe_b64encode(json.dumps(record).encode()).decode()
    else:
        middle = len(pieces[part]) // 2
        flipped = "A" if pieces[part][middle] != "A" else "B"
        pieces[part] = pieces[part][:middle] + flipped + pieces[part][middle + 1 :]
    keys = KeySet.import_key_set(vendor.client.get("/oauth/jwks").json())
    with pytest.raises((JoseError, ValueError)):
        jws.deserialize_compact(".".join(pieces), keys, algorithms=["ES256"])


def test_another_customer_cannot_download_a_receipt(
    ana: Person, bob: Person, vendor: Vendor
) -> None:
    token = tokens_for(ana, vendor, "profile.email:read")
    assert bob.client.get(f"{GRANTS}/{token['grant_id']}/receipt").status_code == 404
