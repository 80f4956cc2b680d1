"""/trend, the pure part: which buckets a range gets, series with the gaps filled, the
figures a caption states, a text sparkline, and the JSON the CLI prints.

The counting itself happens in SQL (:meth:`bot.db.archive.Archive.match_counts`): this
module receives (key, count, first, last) rows, keyed by month (``2025-02``) or by day
(``2025-02-14``, for weekly buckets), and never sees an item.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Bucket = Literal["month", "week"]

MAX_SERIES = 4  # lines in one chart; more would be unreadable
WEEKLY_UP_TO_DAYS = 120  # a range of about four months or less is drawn per week
SPARKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class CountRow:
    """One SQL group: its key (``2025-02`` or ``2025-02-14``), its size and date span."""

    key: str
    count: int
    first: dt.date
    last: dt.date


@dataclass(frozen=True)
class Series:
    term: str
    counts: tuple[tuple[str, int], ...]  # (period, count) for every period, zeros included
    first: dt.date | None  # the first and last matching item's date
    last: dt.date | None

    @property
    def total(self) -> int:
        return sum(n for _, n in self.counts)

    @property
    def peak(self) -> tuple[str, int] | None:
        """The busiest period (the earliest of equals); None when nothing matched."""
        best: tuple[str, int] | None = None
        for period, n in self.counts:
            if n > 0 and (best is None or n > best[1]):
                best = (period, n)
        return best


@dataclass(frozen=True)
class Trend:
    bucket: Bucket
    series: tuple[Series, ...]

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)

    @property
    def periods(self) -> tuple[str, ...]:
        return tuple(p for p, _ in self.series[0].counts) if self.series else ()


def choose_bucket(start: dt.date, end: dt.date) -> Bucket:
    """Weeks for a short range (a month, a quarter), months otherwise."""
    return "week" if (end - start).days <= WEEKLY_UP_TO_DAYS else "month"


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())  # ISO weeks begin on Monday


def period_of(day: dt.date, bucket: Bucket) -> str:
    """A week is named by its Monday (``2025-02-10``), a month as ``2025-02``."""
    return week_start(day).isoformat() if bucket == "week" else f"{day.year:04d}-{day.month:02d}"


def periods(start: dt.date, end: dt.date, bucket: Bucket) -> list[str]:
    """Every period from the one holding ``start`` to the one holding ``end``."""
    if end < start:
        return []
    out: list[str] = []
    if bucket == "week":
        day = week_start(start)
        while day <= end:
            out.append(day.isoformat())
            day += dt.timedelta(days=7)
        return out
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def _key_period(key: str, bucket: Bucket) -> str:
    if bucket == "month":
        return key[:7]
    return period_of(dt.date.fromisoformat(key), bucket)


def build_series(
    term: str, rows: Iterable[CountRow], start: dt.date, end: dt.date, bucket: Bucket
) -> Series:
    """A term's counts over every period of [start, end]; days are summed into weeks."""
    sums = dict.fromkeys(periods(start, end, bucket), 0)
    first: dt.date | None = None
    last: dt.date | None = None
    for row in rows:
        period = _key_period(row.key, bucket)
        if period not in sums or row.count <= 0:
            continue  # outside the drawn range: the SQL was bounded, so only by a bug
        sums[period] += row.count
        first = row.first if first is None else min(first, row.first)
        last = row.last if last is None else max(last, row.last)
    return Series(term, tuple(sums.items()), first, last)


def sparkline(counts: Sequence[int]) -> str:
    """``▁▂▃▄▅▆▇█`` scaled to the largest count; a zero is always the lowest bar."""
    top = max(counts, default=0)
    if top <= 0:
        return SPARKS[0] * len(counts)
    last = len(SPARKS) - 1
    return "".join(SPARKS[0] if n <= 0 else SPARKS[max(1, round(n / top * last))] for n in counts)


def to_json(trend: Trend) -> dict[str, Any]:
    return {
        "bucket": trend.bucket,
        "total": trend.total,
        "series": [
            {"term": s.term, "counts": [{"period": p, "count": n} for p, n in s.counts]}
            for s in trend.series
        ],
    }


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def clip_utf16(text: str, limit: int) -> str:
    """At most ``limit`` UTF-16 units (Telegram counts captions so), ending in … if cut."""
    if utf16_len(text) <= limit:
        return text
    out: list[str] = []
    size = 0
    for c in text:
        units = 2 if ord(c) > 0xFFFF else 1
        if size + units > limit - 1:
            break
        out.append(c)
        size += units
    return "".join(out).rstrip() + "…"
