"""The archive's data model: issues, items and the problems found while reading them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

# Limits the parser enforces, so that what ``briefbot check`` counts is what the index stores
# and what the renderer can show. Content beyond them is reported (``FILE:LINE``), never
# silently lost: a long item is cut (a warning), items past the last one an issue can hold
# are left out (an error). The issue itself is always kept.

# Characters (code points) of one item's Markdown source. A Telegram message holds 4096
# UTF-16 units; an item shown on its own (``render.item_html``) is preceded by its header
# ``YYYY-MM-DD #NNNN`` and a newline (17 units) and followed by its link labels. 4000 leaves
# that room, so a cut item of BMP text (all Chinese is) still fits one message with a few
# links; the visible text is never longer than the source. Characters outside the BMP
# (emoji) take two units each, and the renderer still cuts those to fit. Real items are a
# few hundred characters; this bounds the work a pathological one can cause.
MAX_ITEM_CHARS = 4000

# Items kept per issue. The index numbers an issue's items by position, 0 to
# ``POSITIONS - 1`` (POSITIONS = 10_000 in the db layer, part of every item id), so it must
# be at most POSITIONS; 9999 is also the largest item number the format can write (1 to 4
# digits), so a correctly numbered issue always fits whole.
MAX_ITEMS_PER_ISSUE = 9999


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the content, reported as ``FILE:LINE: severity: message``."""

    file: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity.value}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "severity": self.severity.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class Item:
    """A numbered news item. ``text`` is the Markdown source; ``urls`` every link it carries."""

    number: int
    text: str
    urls: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Issue:
    """One day's brief: its date, title line, items in archive order, and where it came from."""

    date: dt.date
    title: str
    items: tuple[Item, ...]
    file: str = ""
    line: int = 0

    @property
    def key(self) -> str:
        return self.date.isoformat()


@dataclass
class ParseResult:
    """What one file yielded: the good issues, the problems, and dates whose heading is
    present but whose issue could not be read (the index keeps their last good version)."""

    issues: list[Issue] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    broken_dates: set[dt.date] = field(default_factory=set)


@dataclass(frozen=True)
class Hit:
    """One search result: the item, and the ``(start, end)`` ranges of the visible text
    (``markdown.visible_text(text)``) that matched a query term, sorted and non-overlapping."""

    date: dt.date
    number: int
    text: str
    urls: tuple[str, ...]
    marks: tuple[tuple[int, int], ...] = ()
    # The same text in other issues (a collapsed search): (date, number), newest first.
    also: tuple[tuple[dt.date, int], ...] = ()


@dataclass(frozen=True)
class SearchPage:
    """A page of hits, newest first, with the total number of matching items."""

    terms: tuple[str, ...]
    total: int
    offset: int
    limit: int
    hits: tuple[Hit, ...]
