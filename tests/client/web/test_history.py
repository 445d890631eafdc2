"""The history pages: add, change, label and delete events through the
history service; another customer's events are never found; every form
from elsewhere changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from client.web.labels import LABELS
from consent.pages import csrf_token
from tests.client.web.conftest import Customer, form

EVENT = {
    "vendor": "Livraria Lello",
    "type": "purchase",
    "occurred_at": "2026-12-01T15:00:00+01:00",
    "items": [{"name": "A book for my aunt", "amount": "19.90"}],
    "amount": "19.90",
    "currency": "EUR",
}


def _add(who: Customer, **changes: Any) -> dict[str, Any]:
    r = who.http.post("/api/v1/me/history", json={**EVENT, **changes})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _event(who: Customer, event_id: str) -> dict[str, Any]:
    r = who.http.get(f"/api/v1/me/history/{event_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def _events(who: Customer) -> list[dict[str, Any]]:
    r = who.http.get("/api/v1/me/history")
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_an_event_added_on_the_page_is_what_the_api_reads(ana: Customer) -> None:
    fields = ana.get_form("/data/history/new").data(
        vendor="Corner Bookshop",
        type="purchase",
        occurred_at="2026-11-30T10:15",
        amount="12.50",
        currency="EUR",
        channel="store",
        rating="4",
        labels=["gift"],
        items__0__name="Poems",
        items__0__quantity="2",
        items__0__labels=["not_for_me"],
        items__2__name="Bookmark",
    )
    r = ana.http.post("/data/history/new", data=fields)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/data/history?done=added"
    (event,) = _events(ana)
    assert {k: event[k] for k in ("vendor", "type", "occurred_at", "amount", "currency")} == {
        "vendor": "Corner Bookshop",
        "type": "purchase",
        "occurred_at": "2026-11-30T10:15:00Z",
        "amount": "12.50",
        "currency": "EUR",
    }
    assert (event["channel"], event["rating"], event["labels"]) == ("store", 4, ["gift"])
    assert [(i["name"], i["quantity"], i["labels"]) for i in event["items"]] == [
        ("Poems", 2, ["not_for_me"]),
        ("Bookmark", 1, []),
    ]
    page = ana.http.get(r.headers["location"])
    assert "The event was added." in page.text
    assert "Corner Bookshop: purchase" in page.text
    assert "Labels: Gift" in page.text


def test_an_invalid_event_keeps_the_form_and_points_at_the_row(ana: Customer) -> None:
    fields = ana.get_form("/data/history/new").data(
        vendor="Corner Bookshop",
        type="purchase",
        occurred_at="",
        currency="euro",
        items__1__quantity="0",
        items__1__sku="X-1",
    )
    r = ana.http.post("/data/history/new", data=fields)
    assert r.status_code == 422, r.text
    assert "Nothing was added." in r.text
    assert "When: is needed." in r.text
    assert "Currency: is not in the expected format." in r.text
    # The second row became the event's first item; the error is put back on it.
    assert 'id="items-1-quantity-error"' in r.text
    assert 'id="items-1-name-error"' in r.text
    again = form(r.text, "/data/history/new")
    assert again.value("vendor") == "Corner Bookshop"
    assert again.value("currency") == "euro"
    assert again.value("items.1.sku") == "X-1"
    assert _events(ana) == []


def test_labelling_an_event_and_an_item_on_the_page(ana: Customer) -> None:
    added = _add(ana)
    page = f"/data/history/{added['id']}"
    fields = ana.get_form(page).data(labels=["gift"], items__0__labels=["private"])
    r = ana.http.post(page, data=fields)
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/data/history?done=saved"
    event = _event(ana, added["id"])
    assert event["labels"] == ["gift"]
    assert event["items"][0]["labels"] == ["private"]
    # The time was the same instant: its offset was kept.
    assert event["occurred_at"] == "2026-12-01T15:00:00+01:00"
    assert event["items"][0]["amount"] == "19.90"


def test_each_label_is_explained_where_it_is_set(ana: Customer) -> None:
    added = _add(ana)
    r = ana.http.get(f"/data/history/{added['id']}")
    assert r.status_code == 200, r.text
    text = r.text.replace("&#39;", "'")
    assert [words.value for words in LABELS] == ["gift", "not_for_me", "private"]
    for words in LABELS:
        # On the event: the box, its name, and what it means, tied to it.
        box = (
            f'<input type="checkbox" id="labels-{words.value}" name="labels" '
            f'value="{words.value}" aria-describedby="labels-{words.value}-means">'
        )
        assert box in text
        means = f'<p class="hint" id="labels-{words.value}-means">{words.explained}</p>'
        assert means in text
        # On each item, in short, inside the box's label.
        item = f'<label for="items-0-labels-{words.value}">{words.name}: {words.short}</label>'
        assert item in text
    explained = {w.value: w.explained for w in LABELS}
    assert explained["private"].startswith("Vendors never see this")
    assert explained["not_for_me"].startswith("Shared, marked as not for you")
    assert explained["gift"].startswith("Shared, marked as a gift")
    assert {w.value: w.short for w in LABELS} == {
        "gift": "shared, marked as a gift",
        "not_for_me": "shared, marked as not for you",
        "private": "vendors never see this",
    }


def test_label_words_follow_the_access_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The words say what consent.policy.visible decides: were it to hide
    gifts, the page would say so."""
    from client.web import labels

    monkeypatch.setattr(
        labels.policy, "visible", lambda found: "private" not in found and "gift" not in found
    )
    assert labels._words("gift").short == "vendors never see this"
    assert labels._words("not_for_me").short == "shared, marked as not for you"


def test_removing_an_item_and_a_field_on_the_page(ana: Customer) -> None:
    added = _add(ana)
    page = f"/data/history/{added['id']}"
    fields = ana.get_form(page).data(items__0__name="", items__0__amount="", currency="")
    r = ana.http.post(page, data=fields)
    assert r.status_code == 303, r.text
    event = _event(ana, added["id"])
    assert event["items"] == []
    assert event["currency"] is None


def test_deleting_an_event_on_the_page(ana: Customer) -> None:
    added = _add(ana)
    page = f"/data/history/{added['id']}"
    token = ana.get_form(page, f"{page}/delete").value("csrf")
    r = ana.http.post(f"{page}/delete", data={"csrf": str(token)})
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/data/history?done=deleted"
    assert _events(ana) == []


def test_history_is_paged_newest_first(ana: Customer) -> None:
    for day in range(1, 26):
        _add(ana, occurred_at=f"2026-10-{day:02d}T12:00:00Z", vendor=f"Shop {day}")
    first = ana.http.get("/data/history")
    assert first.status_code == 200, first.text
    assert first.text.count("<h2>Shop ") == 20
    assert "<h2>Shop 25: purchase</h2>" in first.text
    assert "<h2>Shop 5: purchase</h2>" not in first.text
    older = first.text.split('<a href="/data/history?cursor=')[1].split('"')[0]
    second = ana.http.get(f"/data/history?cursor={older}")
    assert second.status_code == 200, second.text
    assert second.text.count("<h2>Shop ") == 5
    assert "<h2>Shop 5: purchase</h2>" in second.text
    assert "?cursor=" not in second.text
    assert '<a href="/data/history">Newest events</a>' in second.text


def test_a_cursor_not_given_out_shows_the_newest_page_and_says_so(ana: Customer) -> None:
    _add(ana)
    r = ana.http.get("/data/history?cursor=not-a-cursor")
    assert r.status_code == 400, r.text
    assert "That page link is not one this site gave out" in r.text
    assert "Livraria Lello: purchase" in r.text


def test_history_forms_without_their_token_or_with_another_sessions_change_nothing(
    ana: Customer, bob: Customer
) -> None:
    added = _add(ana)
    page = f"/data/history/{added['id']}"
    fields = ana.get_form(page).data(labels=["private"])
    bobs = bob.get_form("/data/history/new").value("csrf")
    for token in ("", str(bobs)):
        r = ana.http.post(page, data={**fields, "csrf": token})
        assert r.status_code == 403, r.text
        r = ana.http.post(f"{page}/delete", data={"csrf": token})
        assert r.status_code == 403, r.text
        new = ana.get_form("/data/history/new").data(vendor="X", type="visit")
        new["occurred_at"] = "2026-12-01T10:00"
        r = ana.http.post("/data/history/new", data={**new, "csrf": token})
        assert r.status_code == 403, r.text
    # The token of one event's form does not delete it, nor change another.
    r = ana.http.post(f"{page}/delete", data={"csrf": str(fields["csrf"])})
    assert r.status_code == 403, r.text
    assert [e["id"] for e in _events(ana)] == [added["id"]]
    assert _event(ana, added["id"]) == added


def _token_for(app: FastAPI, who: Customer, action: str) -> str:
    """A valid token of ``who``'s own session for ``action``: what no page
    gives out for another customer's event, made here to show that even
    with it nothing is found."""
    session = who.http.cookies["vrm_session"]
    return csrf_token(app.state.vault, session, f"web {action}")


@pytest.mark.parametrize("suffix", ["", "/delete"])
def test_another_customers_event_is_never_found(
    app: FastAPI, ana: Customer, bob: Customer, suffix: str
) -> None:
    bobs = _add(bob, vendor="Bob's Shop", notes="Bob's note")
    page = f"/data/history/{bobs['id']}"
    r = ana.http.get(page)
    assert r.status_code == 404, r.text
    assert "Bob" not in r.text
    forged = ana.get_form("/data/history/new").data(vendor="Mallory", type="visit")
    forged.update(occurred_at="2026-12-01T10:00", csrf=_token_for(app, ana, page + suffix))
    r = ana.http.post(page + suffix, data=forged)
    assert r.status_code == 404, r.text
    assert "Bob" not in r.text
    assert _event(bob, bobs["id"]) == bobs
    assert _events(ana) == []
    assert "Bob" not in ana.http.get("/data/history").text


def test_history_pages_need_a_session(visitor: TestClient) -> None:
    for method, path in [
        ("GET", "/data/history"),
        ("GET", "/data/history/new"),
        ("POST", "/data/history/new"),
        ("GET", "/data/history/abc"),
        ("POST", "/data/history/abc"),
        ("POST", "/data/history/abc/delete"),
    ]:
        r = visitor.request(method, path)
        assert r.status_code == 303, (method, path)
        assert r.headers["location"] == f"/login?next={path}"


def test_an_item_without_a_name_is_refused_on_its_row(ana: Customer) -> None:
    added = _add(ana)
    page = f"/data/history/{added['id']}"
    fields = ana.get_form(page).data(items__0__name="", items__1__sku="X-2")
    r = ana.http.post(page, data=fields)
    assert r.status_code == 422, r.text
    assert "Item 1, name: is needed." in r.text
    assert "Item 2, name: is needed." in r.text
    assert _event(ana, added["id"]) == added


def test_markup_typed_by_a_customer_is_shown_as_text(ana: Customer) -> None:
    added = _add(ana, vendor="<script>alert(1)</script>", notes='"><img src=x>')
    for page in ("/data/history", f"/data/history/{added['id']}"):
        r = ana.http.get(page)
        assert r.status_code == 200, r.text
        assert "<script>alert" not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
        assert "<img src=x>" not in r.text
    assert form(r.text, page).value("notes") == '"><img src=x>'


def test_the_list_shows_times_in_utc_as_the_form_asks_for_them(ana: Customer) -> None:
    added = _add(ana)  # 15:00 at +01:00
    r = ana.http.get("/data/history")
    assert '<time datetime="2026-12-01T15:00:00+01:00">01 Dec 2026, 14:00 UTC</time>' in r.text
    edit = ana.get_form(f"/data/history/{added['id']}")
    assert edit.value("occurred_at") == "2026-12-01T14:00"


def test_an_event_a_vendor_recorded_says_so_without_its_id(ana: Customer, app: FastAPI) -> None:
    from vrm.catalogue.history import HistoryEvent
    from vrm.history import service

    with Session(app.state.engine) as session:
        customer_id = ana.http.get("/api/v1/me").json()["id"]
        service.add_event(
            session=session,
            vault=app.state.vault,
            customer_id=customer_id,
            event=HistoryEvent.model_validate({**EVENT, "items": []}),
            source="vendor:0123456789abcdef",
        )
    r = ana.http.get("/data/history")
    assert "recorded by the vendor" in r.text
    assert "0123456789abcdef" not in r.text
