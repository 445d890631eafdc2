"""Log entries in the customer's words (client/web/words.py): who, what,
which data and why, for each kind of entry the access page lists."""

from __future__ import annotations

from typing import Any

import pytest

from client.web import words

VENDORS = {"vnd_1": "Bertrand Books"}
AT = "2026-12-07T13:20:00.123456Z"
GRANT = {
    "vendor": "vnd_1",
    "grant": "g1",
    "at": AT,
    "purpose": "dpv:ServiceProvision",
    "expires_at": "2027-12-07T13:20:00Z",
}


@pytest.mark.parametrize(
    ("entry", "who", "what", "fields"),
    [
        (
            {"type": "data.read", "fields": ["profile.email", "history"], **GRANT},
            "Bertrand Books",
            "read your data",
            [
                "your contact email address",
                "your purchase and interaction history (never events you marked private)",
            ],
        ),
        (
            {"type": "data.read", "fields": ["profile.email"], "not_modified": True, **GRANT},
            "Bertrand Books",
            "read your data (unchanged since its last read)",
            ["your contact email address"],
        ),
        (
            {
                "type": "consent.granted",
                "by": "customer",
                "scopes": ["profile.email:read"],
                **GRANT,
            },
            "You",
            "allowed Bertrand Books to read your contact email address, "
            "until 7 December 2027, 13:20 UTC",
            [],
        ),
        (
            {
                "type": "consent.narrowed",
                "by": "customer",
                "from_scopes": ["profile.email:read", "profile.phone:read"],
                "scopes": ["profile.email:read"],
                **GRANT,
            },
            "You",
            "took back from Bertrand Books: read your phone number",
            [],
        ),
        (
            {
                "type": "consent.shortened",
                "by": "customer",
                "from_expires_at": "2027-12-07T13:20:00Z",
                **GRANT,
                "expires_at": "2026-12-14T13:20:00Z",
            },
            "You",
            "brought the end of Bertrand Books's access forward from "
            "7 December 2027, 13:20 UTC to 14 December 2026, 13:20 UTC",
            [],
        ),
        (
            {"type": "consent.revoked", "by": "customer", **GRANT},
            "You",
            "withdrew all of Bertrand Books's access",
            [],
        ),
        (
            {"type": "consent.revoked", "by": "operator", **GRANT},
            "The store",
            "Bertrand Books's access was ended by the store's operator, who disabled the vendor",
            [],
        ),
        (
            {"type": "consent.expired", "by": "expiry", **GRANT},
            "The store",
            "Bertrand Books's access ended on its end date",
            [],
        ),
        (
            {"type": "account.exported", "at": AT},
            "You",
            "exported all your data",
            [],
        ),
        (
            {"type": "data.read", "fields": ["profile.email"], **GRANT, "vendor": "vnd_gone"},
            "A vendor",
            "read your data",
            ["your contact email address"],
        ),
    ],
)
def test_each_entry_says_who_did_what_to_which_data(
    entry: dict[str, Any], who: str, what: str, fields: list[str]
) -> None:
    said = words.entry(entry, VENDORS)
    assert said == {
        "who": who,
        "what": what,
        "fields": fields,
        "why": "to provide the service you asked for" if "purpose" in entry else "",
        "when": "7 December 2026, 13:20 UTC",
    }


def test_only_a_web_address_is_a_link() -> None:
    assert words.link("https://shop.example/privacy") == "https://shop.example/privacy"
    assert words.link("javascript:alert(1)") is None
    assert words.link("data:text/html,hi") is None
    assert words.link(None) is None
