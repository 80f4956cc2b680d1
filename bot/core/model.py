"""The archive's data model: issues, items and the problems found while reading them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


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


@dataclass(frozen=True)
class SearchPage:
    """A page of hits, newest first, with the total number of matching items."""

    terms: tuple[str, ...]
    total: int
    offset: int
    limit: int
    hits: tuple[Hit, ...]
