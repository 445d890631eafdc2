"""The access history page: the customer's log entries in words, filtered
and paged as the API's access log is, a chart of each vendor's reads, and
each entry's receipt (the API's own) as a download."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from client.web import access
from consent.audit import tree
from tests.client.web.conftest import Customer
from tests.client.web.grants import connect, vendor_read
from tests.consent.conftest import Vendor, register_vendor


def _page(who: Customer, **params: str) -> str:
    r = who.http.get("/access", params=params)
    assert r.status_code == 200, r.text
    return r.text


def _text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _entries(page: str) -> list[str]:
    found = re.search(r'<ol class="events">(.*?)</ol>', page, re.S)
    if found is None:
        return []
    return [_text(item) for item in re.findall(r"<li>(.*?)</li>", found.group(1), re.S)]


def _descriptions(page: str) -> list[str]:
    return [html.unescape(d) for d in re.findall(r'<desc id="chart-\d+-desc">(.*?)</desc>', page)]


def _read(vendor: Vendor, token: str, times: int = 1) -> None:
    for _ in range(times):
        r = vendor_read(vendor, token)
        assert r.status_code == 200, r.text


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def test_a_vendors_read_and_the_consent_are_shown_in_words(ana: Customer, vendor: Vendor) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    _read(vendor, token)
    entries = _entries(_page(ana))
    assert len(entries) == 3
    read, issued, granted = entries
    assert read.startswith(
        f"Bertrand Books read your data: your contact email address. {datetime.now(UTC).day} "
    )
    assert "Why: to provide the service you asked for." in read
    assert "Receipt of entry" in read
    assert issued.startswith("Bertrand Books was given a key to read what you allowed, until ")
    assert granted.startswith(
        "You allowed Bertrand Books to read your contact email address, until "
    )


def test_consent_changes_are_said_in_words(ana: Customer, vendor: Vendor) -> None:
    grant_id, _ = connect(ana, vendor, "profile.email:read profile.phone:read")
    narrow = f"/vendors/{grant_id}/narrow"
    sent = ana.get_form(f"/vendors/{grant_id}", narrow).data(keep=["profile.email:read"])
    assert ana.http.post(narrow, data=sent).status_code == 303
    revoke = f"/vendors/{grant_id}/revoke"
    assert ana.http.post(revoke, data=ana.get_form(revoke).data()).status_code == 303
    revoked, narrowed = _entries(_page(ana))[:2]
    assert revoked.startswith("You withdrew all of Bertrand Books's access.")
    assert narrowed.startswith("You took back from Bertrand Books: read your phone number.")


def test_the_page_lists_what_the_apis_access_log_lists(
    ana: Customer, vendor: Vendor, other_vendor: Vendor
) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    connect(ana, other_vendor, "preferences:read")
    _read(vendor, token, 2)
    for params in ({}, {"vendor": other_vendor.client_id}):
        api = ana.http.get("/api/v1/me/access-log", params=params)
        assert api.status_code == 200, api.text
        listed = re.findall(r'href="/access/(\d+)/receipt"', _page(ana, **params))
        assert [int(i) for i in listed] == [item["index"] for item in api.json()["items"]]


def test_a_chart_per_vendor_counts_its_reads_in_the_period(
    ana: Customer, vendor: Vendor, other_vendor: Vendor
) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    _, other = connect(ana, other_vendor, "preferences:read")
    _read(vendor, token, 3)
    _read(other_vendor, other)
    page = _page(ana)
    assert page.count("<svg ") == 2
    day = datetime.now(UTC).date()
    first = (day - timedelta(days=29)).isoformat()
    assert _descriptions(page) == [
        f"3 reads from {first} to {day.isoformat()}; the most, 3, on {day.isoformat()}.",
        f"1 read from {first} to {day.isoformat()}; the most, 1, on {day.isoformat()}.",
    ]
    assert "Reads of your data by Bertrand Books, per day" in page
    assert "Reads of your data by Farmácia Central, per day" in page
    # Above the list.
    assert page.index("<svg ") < page.index('<ol class="events">')


def test_the_filter_keeps_to_one_vendor(
    ana: Customer, vendor: Vendor, other_vendor: Vendor
) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    connect(ana, other_vendor, "preferences:read")
    _read(vendor, token, 2)
    page = _page(ana, vendor=vendor.client_id)
    entries = _entries(page)
    assert len(entries) == 4
    assert all(e.startswith(("Bertrand Books", "You allowed Bertrand Books")) for e in entries)
    assert page.count("<svg ") == 1
    assert _descriptions(page)[0].startswith("2 reads from ")
    assert f'<option value="{vendor.client_id}" selected>Bertrand Books</option>' in page


def test_the_filter_keeps_to_a_period(ana: Customer, vendor: Vendor) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    _read(vendor, token)
    today = datetime.now(UTC).date()
    assert len(_entries(_page(ana, since=_today(), until=_today()))) == 3
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = _page(ana, since=tomorrow)
    assert _entries(later) == []
    assert "No entries match this filter." in later
    assert _entries(_page(ana, until=(today - timedelta(days=1)).isoformat())) == []
    # A week's chart, one bar a day.
    week = _page(ana, since=(today - timedelta(days=6)).isoformat(), until=_today())
    assert week.count("<rect ") == 7
    assert _descriptions(week)[0].startswith("1 read from ")


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"since": "soon"}, "since", "Since: is not a date (year-month-day)."),
        ({"until": "2026-02-30"}, "until", "Until: is not a date (year-month-day)."),
        (
            {"since": "2026-03-02", "until": "2026-03-01"},
            "until",
            "Until: the period ends before it starts.",
        ),
        ({"vendor": "vnd_someone_else"}, "vendor", "Vendor: choose one from the list."),
    ],
)
def test_a_wrong_filter_is_said_in_words(
    ana: Customer, vendor: Vendor, params: dict[str, str], field: str, message: str
) -> None:
    connect(ana, vendor, "profile.email:read")
    page = _page(ana, **params)
    assert 'role="alert"' in page
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page)
    assert error is not None, page
    assert html.unescape(error.group(1)) == message
    assert f'aria-describedby="{field}-error"' in page
    # The rest of the filter still applies; the entries are listed.
    assert len(_entries(page)) == 2


def test_older_entries_are_a_page_away_and_the_filter_is_kept(
    monkeypatch: pytest.MonkeyPatch, ana: Customer, vendor: Vendor
) -> None:
    monkeypatch.setattr(access, "PAGE_SIZE", 2)
    _, token = connect(ana, vendor, "profile.email:read")
    _read(vendor, token, 3)
    first = _page(ana, vendor=vendor.client_id)
    assert len(_entries(first)) == 2
    older = re.search(r'<a href="([^"]+)">Older entries</a>', first)
    assert older is not None
    link = html.unescape(older.group(1))
    assert parse_qs(urlsplit(link).query)["vendor"] == [vendor.client_id]
    walked = _entries(first)
    while link:
        r = ana.http.get(link)
        assert r.status_code == 200, r.text
        walked += _entries(r.text)
        found = re.search(r'<a href="([^"]+)">Older entries</a>', r.text)
        link = html.unescape(found.group(1)) if found else ""
    assert len(walked) == 5
    assert walked[-1].startswith("You allowed Bertrand Books")


def test_a_period_longer_than_a_chart_draws_its_last_two_years(
    ana: Customer, vendor: Vendor
) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    _read(vendor, token)
    page = _page(ana, since="2000-01-01")
    first = datetime.now(UTC).date() - timedelta(days=access.MAX_DAYS - 1)
    assert f"so they start on {first.day} {first:%B %Y}." in page
    assert 'role="alert"' not in page
    assert _descriptions(page)[0].startswith(f"1 read from {first.isoformat()} to ")
    assert len(_entries(page)) == 3


def test_a_forged_page_link_shows_the_first_page(ana: Customer, vendor: Vendor) -> None:
    connect(ana, vendor, "profile.email:read")
    page = _page(ana, cursor="abc")
    assert "That page link is not one this site gave out, so here is the first page." in page
    assert len(_entries(page)) == 2


def test_a_vendors_name_is_escaped_in_the_list_and_the_chart(app: FastAPI, ana: Customer) -> None:
    vendor = register_vendor(app, "<script>alert(1)</script> & Co")
    _, token = connect(ana, vendor, "profile.email:read")
    _read(vendor, token)
    page = _page(ana)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co</strong> read your data" in page
    assert "Reads of your data by &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co, per day" in page


def test_the_receipt_is_the_apis_once_a_checkpoint_covers_it(
    app: FastAPI, ana: Customer, bob: Customer, vendor: Vendor
) -> None:
    _, token = connect(ana, vendor, "profile.email:read")
    _read(vendor, token)
    log = ana.http.get("/api/v1/me/access-log", params={"type": "data.read"}).json()
    index = log["items"][0]["index"]
    url = f"/access/{index}/receipt"
    assert f'href="{url}"' in _page(ana)

    early = ana.http.get(url)
    assert early.status_code == 409, early.text
    assert "Receipt not available" in early.text
    assert "No signed checkpoint covers this entry yet" in early.text
    assert early.headers["content-type"].startswith("text/html")

    tree.sign_checkpoint(app.state.engine, app.state.audit_signer)
    r = ana.http.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="receipt-{index}.json"'
    assert r.headers["content-type"] == "application/json"
    api = ana.http.get(f"/api/v1/me/access-log/{index}/receipt")
    assert api.status_code == 200, api.text
    assert r.json() == api.json()
    assert r.json()["proof"] == api.json()["proof"]

    for path in (url.replace(str(index), "0"), "/access/abc/receipt"):
        missing = ana.http.get(path)
        assert missing.status_code == 404, missing.text
        assert "No such entry" in missing.text
    theirs = bob.http.get(url)
    assert theirs.status_code == 404, theirs.text


def test_the_page_needs_a_session(visitor: TestClient) -> None:
    for path in ("/access", "/access/1/receipt"):
        r = visitor.get(path)
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/login?next={path}"
