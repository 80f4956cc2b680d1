"""Settling, the pure part: what blocks an issue, and which issue a problem belongs to.

An issue is ready when ``briefbot check`` reports no error inside it, no item is empty
(``1. `` alone: the editor is still typing), and it has not changed for
``content.settle_seconds``. The empty-item rule belongs in the content checker
(bot/core/content.py) as well; until it reports it, it is enforced here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bot.core.model import Issue, Problem, Severity


def items_digest(issue: Issue) -> str:
    """Of the items alone (not the date or the title): an issue whose heading date moved
    has the same items digest under its new date."""
    payload = [(i.number, i.text, list(i.urls)) for i in issue.items]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def empty_items(issue: Issue) -> list[int]:
    """Numbers of the items with no text."""
    return [i.number for i in issue.items if not i.text.strip()]


def blocked_reason(issue: Issue, errors: Sequence[Problem] = ()) -> str:
    """Why the issue may not go out yet; '' if nothing blocks it."""
    if not issue.items:
        return "the issue has no items yet"
    empty = empty_items(issue)
    if empty:
        shown = ", ".join(str(n) for n in empty[:5])
        return f"item {shown} has no text" if len(empty) == 1 else f"items {shown} have no text"
    if errors:
        first = errors[0]
        return f"line {first.line}: {first.message}"
    return ""


def relative(problem_file: str, root: Path) -> str | None:
    """A problem's file as the index stores it (relative to the content root)."""
    try:
        return Path(problem_file).relative_to(root).as_posix()
    except ValueError:
        return None


def error_files(problems: Iterable[Problem], root: Path) -> dict[str, list[Problem]]:
    out: dict[str, list[Problem]] = {}
    for p in problems:
        rel = relative(p.file, root)
        if p.severity is Severity.ERROR and rel is not None:
            out.setdefault(rel, []).append(p)
    return out


def errors_by_date(
    by_file: Mapping[str, Sequence[Problem]],
    lines: Mapping[str, Sequence[tuple[int, dt.date]]],
) -> dict[dt.date, list[Problem]]:
    """Each error to the issue whose heading is the last one at or before its line; an
    error about the whole file (line 0) to every issue of the file; one before the first
    heading to none."""
    out: dict[dt.date, list[Problem]] = {}
    for rel, problems in by_file.items():
        headings = list(lines.get(rel, ()))
        starts = [line for line, _ in headings]
        for p in problems:
            if p.line <= 0:
                for _, date in headings:
                    out.setdefault(date, []).append(p)
                continue
            at = bisect_right(starts, p.line) - 1
            if at >= 0:
                out.setdefault(headings[at][1], []).append(p)
    return out
