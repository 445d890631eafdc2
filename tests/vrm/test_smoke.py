from __future__ import annotations

from tests.conftest import Person


def test_signed_up_customer_reads_their_empty_profile(ana: Person) -> None:
    r = ana.client.get("/api/v1/me/profile")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "given_name": None,
        "family_name": None,
        "email": None,
        "phone": None,
        "postal_address": None,
        "birth_date": None,
        "language": None,
    }
    assert r.headers["etag"].startswith('"1-')
