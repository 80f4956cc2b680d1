"""Reading the dates people type: ``2025-02-14``, ``2月14日``, ``昨天``, ``latest``, ranges.

Any text, however long or odd, gives a date or the documented error: DateError from
``parse_date``, None or ValueError from ``parse_period``. Years run from 1 to 9999 (what
``datetime.date`` holds); nothing here steps past either end.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

ACCEPTED_FORMS = (
    "2025-02-14, 2025.02.14, 2025/2/14, 20250214, 2025年2月14日, "
    "2月14日 or 02-14 (the most recent one), today/今天, yesterday/昨天, latest/最新"
)


class DateError(ValueError):
    """A date that cannot be read; the message lists the accepted forms."""

    def __init__(self, text: str) -> None:
        super().__init__(f"cannot read the date '{text}'; accepted forms: {ACCEPTED_FORMS}")
        self.text = text


LATEST = "latest"

_FULL = re.compile(r"^(\d{4})\s*[-./年]\s*(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{1,2})\s*[-./月]\s*(\d{1,2})\s*日?$")
_WORDS = {
    "today": 0,
    "今天": 0,
    "今日": 0,
    "yesterday": 1,
    "昨天": 1,
    "昨日": 1,
}
_LATEST_WORDS = {"latest", "最新", "last", "newest"}


def _normalize(text: str) -> str:
    # Full-width digits and punctuation typed on a Chinese keyboard mean the same.
    return (
        text.strip().translate(str.maketrans("０１２３４５６７８９－．／", "0123456789-./")).lower()
    )


def parse_date(text: str, today: dt.date, known: Iterable[dt.date] = ()) -> dt.date | str:
    """A date, or ``LATEST``. Raises DateError with the accepted forms for anything else.

    A month and day without a year means the most recent such day: the latest issue date in
    ``known`` with that month and day if there is one, else the latest calendar day."""
    t = _normalize(text)
    if t in _LATEST_WORDS:
        return LATEST
    if t in _WORDS:
        if today.toordinal() <= _WORDS[t]:  # "yesterday" on 0001-01-01
            raise DateError(text)
        return today - dt.timedelta(days=_WORDS[t])
    m = _FULL.match(t) or _COMPACT.match(t)
    try:
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3]))
        m = _MONTH_DAY.match(t)
        if m:
            month, day = int(m[1]), int(m[2])
            issues = [d for d in known if (d.month, d.day) == (month, day) and d <= today]
            return max(issues) if issues else most_recent(month, day, today)
    except ValueError:
        pass
    raise DateError(text)


def month_day(text: str) -> tuple[int, int] | None:
    """(month, day) when the text is a date without a year (``2月14日``, ``02-14``)."""
    m = _MONTH_DAY.match(_normalize(text))
    return (int(m[1]), int(m[2])) if m else None


def most_recent(month: int, day: int, today: dt.date) -> dt.date:
    """The latest date with this month and day that is not after today (Feb 29 included).
    Raises ValueError when there is none (no such day, or none since year 1)."""
    for year in range(today.year, max(today.year - 8, 0), -1):
        try:
            candidate = dt.date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    raise ValueError(f"no such day: {month}-{day}")


@dataclass(frozen=True)
class DateRange:
    start: dt.date
    end: dt.date  # inclusive

    def __str__(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


_PERIOD = re.compile(r"^(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?$")


def _period(text: str) -> DateRange | None:
    m = _PERIOD.match(text)
    if not m:
        return None
    year = int(m[1])
    if m[3]:
        day = dt.date(year, int(m[2]), int(m[3]))
        return DateRange(day, day)
    if m[2]:
        start = dt.date(year, int(m[2]), 1)
        return DateRange(start, month_end(start.year, start.month))
    return DateRange(dt.date(year, 1, 1), dt.date(year, 12, 31))


def month_end(year: int, month: int) -> dt.date:
    """The last day of a month, December 9999 included (the first of the next month, minus
    a day, does not exist there). Raises ValueError for a month or year out of range."""
    first = dt.date(year, month, 1)  # validates both
    return first.replace(day=calendar.monthrange(year, month)[1])


def parse_period(text: str) -> DateRange | None:
    """``2025``, ``2025-02``, ``2025-02-14`` or ``A..B`` as a date range; None if the text
    is not shaped like one. Raises ValueError for a period shape with impossible values."""
    t = _normalize(text)
    if ".." in t:
        a, _, b = t.partition("..")
        first, last = _period(a), _period(b)
        if first is None or last is None:
            return None
        if last.end < first.start:
            raise ValueError(f"the range '{text}' ends before it starts")
        return DateRange(first.start, last.end)
    return _period(t)
