"""A vendor's reads over time as an SVG bar chart, drawn by the server.

No chart library reaches the browser: the page carries the SVG itself,
under the same Content-Security-Policy as the rest (so presentation
attributes, never ``style``). Every text in it is escaped, since a vendor
names itself. The chart is an image with a title and a description that
say what it shows in words, for a screen reader; the page beside it lists
the same entries as text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape

# Drawn at the page's width (36rem at most): 400 units across keep its
# 14-unit text at about 12 px on a phone's 390 px, where 600 gave 5 px.
WIDTH = 400
HEIGHT = 150
FONT = 14
# Room below the bars for the period's first and last dates, above them for the top count.
_AXIS = 24
_TOP = 20
# Blue on white, 6.4:1: above the 3:1 WCAG 2.2 asks of a graphic (1.4.11).
BAR = "#1f5fa8"
TEXT = "#1b1b1b"
_IDENT = re.compile(r"[a-z0-9-]{1,40}")
# Days in a bar: one day a bar up to this many days, then a week a bar.
_DAILY_UP_TO = 62


@dataclass(frozen=True)
class Bar:
    start: date
    days: int
    count: int


def bars(times: Iterable[datetime], since: date, until: date) -> list[Bar]:
    """The reads at ``times`` counted per day from ``since`` to ``until``
    (both included), or per week (from ``since``) over a longer period.
    Times outside the period are not counted."""
    if until < since:
        raise ValueError("the period ends before it starts")
    span = (until - since).days + 1
    step = 1 if span <= _DAILY_UP_TO else 7
    counts = Counter((t.date() - since).days // step for t in times if since <= t.date() <= until)
    return [
        Bar(since + timedelta(days=i * step), min(step, span - i * step), counts[i])
        for i in range(-(-span // step))
    ]


def _words(bar: Bar) -> str:
    if bar.days == 1:
        return bar.start.isoformat()
    return f"{bar.start.isoformat()} to {(bar.start + timedelta(days=bar.days - 1)).isoformat()}"


def svg(vendor: str, shown: list[Bar], *, ident: str) -> Markup:
    """The chart of one vendor's reads: a bar per day or week, the highest
    count marked, the period's first and last dates below. ``ident`` makes
    the ids of its title and description unique on the page."""
    if not shown:
        raise ValueError("a chart needs at least one bar")
    total = sum(b.count for b in shown)
    busiest = max(shown, key=lambda b: b.count)
    if not _IDENT.fullmatch(ident):
        raise ValueError("an ident is lowercase letters, digits and dashes")
    unit = "day" if shown[0].days == 1 else "week"
    title = f"Reads of your data by {vendor}, per {unit}"
    if total:
        desc = (
            f"{total} read{'s' if total != 1 else ''} from {_words(shown[0]).split(' to ')[0]} "
            f"to {_words(shown[-1]).split(' to ')[-1]}; the most, {busiest.count}, "
            f"on {_words(busiest)}."
        )
    else:
        desc = "No reads in this period."
    high = max(busiest.count, 1)
    plot = HEIGHT - _AXIS - _TOP
    width = WIDTH / len(shown)
    gap = min(2.0, width / 4)
    rects = []
    for i, bar in enumerate(shown):
        h = round(plot * bar.count / high, 1)
        rects.append(
            f'<rect x="{round(i * width + gap / 2, 1)}" y="{round(_TOP + plot - h, 1)}" '
            f'width="{round(width - gap, 1)}" height="{h}" fill="{BAR}">'
            f"<title>{escape(_words(bar))}: {bar.count}</title></rect>"
        )
    baseline = _TOP + plot
    first = escape(shown[0].start.isoformat())
    last = escape(_words(shown[-1]).split(" to ")[-1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc" class="chart">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
        *rects,
        f'<line x1="0" y1="{baseline}" x2="{WIDTH}" y2="{baseline}" stroke="{TEXT}"/>',
        f'<text x="0" y="{HEIGHT - 6}" fill="{TEXT}" font-size="{FONT}">{first}</text>',
        f'<text x="{WIDTH}" y="{HEIGHT - 6}" fill="{TEXT}" font-size="{FONT}" '
        f'text-anchor="end">{last}</text>',
        f'<text x="0" y="{FONT}" fill="{TEXT}" font-size="{FONT}">'
        f"most in a {unit}: {busiest.count}</text>",
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
