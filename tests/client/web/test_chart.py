"""The access history's chart: reads counted per day or week, drawn as an
SVG that says in words what it shows and never carries a vendor's name
unescaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest

from client.web.chart import HEIGHT, Bar, bars, svg

SVG = "{http://www.w3.org/2000/svg}"


def _parse(drawn: object) -> ET.Element:
    return ET.fromstring(str(drawn))  # noqa: S314 - our own output, which the test checks


def _at(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def test_reads_are_counted_per_day_within_the_period() -> None:
    times = [_at("2026-12-01"), _at("2026-12-01", 23), _at("2026-12-03"), _at("2026-11-30")]
    assert bars(times, date(2026, 12, 1), date(2026, 12, 3)) == [
        Bar(date(2026, 12, 1), 1, 2),
        Bar(date(2026, 12, 2), 1, 0),
        Bar(date(2026, 12, 3), 1, 1),
    ]


def test_a_long_period_is_counted_per_week_and_the_last_week_may_be_short() -> None:
    since, until = date(2026, 1, 1), date(2026, 3, 31)  # 90 days: 12 weeks and 6 days
    shown = bars([_at("2026-01-07"), _at("2026-01-08"), _at("2026-03-31")], since, until)
    assert len(shown) == 13
    assert [b.days for b in shown] == [7] * 12 + [6]
    assert (shown[0].count, shown[1].count, shown[-1].count) == (1, 1, 1)
    assert sum(b.count for b in shown) == 3


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="ends before"):
        bars([], date(2026, 2, 1), date(2026, 1, 1))


def test_the_chart_is_an_image_with_words_and_one_bar_per_count() -> None:
    shown = bars(
        [_at("2026-12-01")] * 4 + [_at("2026-12-02")], date(2026, 12, 1), date(2026, 12, 3)
    )
    root = _parse(svg("Corner Bookshop", shown, ident="v-1"))
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "v-1-title v-1-desc"
    assert root.findtext(f"{SVG}title") == "Reads of your data by Corner Bookshop, per day"
    assert root.findtext(f"{SVG}desc") == (
        "5 reads from 2026-12-01 to 2026-12-03; the most, 4, on 2026-12-01."
    )
    rects = root.findall(f"{SVG}rect")
    heights = [float(r.get("height", "")) for r in rects]
    assert len(rects) == 3
    assert heights[0] > heights[1] > heights[2] == 0
    assert heights[0] == pytest.approx(4 * heights[1])
    assert all(0 <= float(r.get("y", "")) <= HEIGHT for r in rects)
    assert [r.findtext(f"{SVG}title") for r in rects] == [
        "2026-12-01: 4",
        "2026-12-02: 1",
        "2026-12-03: 0",
    ]
    assert all(el.get("style") is None for el in root.iter())


def test_an_empty_period_says_so() -> None:
    root = _parse(svg("Shop", bars([], date(2026, 1, 1), date(2026, 1, 2)), ident="x"))
    assert root.findtext(f"{SVG}desc") == "No reads in this period."


def test_a_vendors_name_is_never_markup() -> None:
    name = '<script>alert(1)</script>" onload="alert(2)'
    drawn = str(svg(name, bars([], date(2026, 1, 1), date(2026, 1, 1)), ident="x"))
    assert "<script" not in drawn
    assert 'onload="' not in drawn
    root = _parse(drawn)
    assert root.findtext(f"{SVG}title") == f"Reads of your data by {name}, per day"


@pytest.mark.parametrize("ident", ["", "A", 'x" onload="y', "x" * 41])
def test_an_ident_that_is_not_plain_is_refused(ident: str) -> None:
    with pytest.raises(ValueError, match="ident"):
        svg("Shop", [Bar(date(2026, 1, 1), 1, 0)], ident=ident)
