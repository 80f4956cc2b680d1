"""Reading the Markdown archive: pure parsing of one file's text, plus the rule that decides
which copy of an issue wins when the same date appears in two places.

Format: optional ``# 2025年2月``; ``## YYYY.MM.DD`` starts an issue; its first non-empty line is
the title; then ``N. text`` items whose text may continue on indented lines and which are
followed by zero or more indented URL lines.

Lines end at LF, CRLF or CR only: the other characters ``str.splitlines`` breaks at (form
feed, NEL, U+2028, ...) are text, so they neither cut an item short nor shift the line
numbers of the problems after them. Every pattern here reads a line in linear time (none
ends in a lazy group followed by optional spaces, which rescans a run of spaces once per
space), and the limits in ``bot.core.model`` bound what one item and one issue can hold.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.core.markdown import inline_urls, safe_cut
from bot.core.model import (
    MAX_ITEM_CHARS,
    MAX_ITEMS_PER_ISSUE,
    Issue,
    Item,
    ParseResult,
    Problem,
    Severity,
)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
# The captured rest is stripped in code: a lazy group then \s*$ is quadratic in spaces.
_HEADING = re.compile(r"^##(?!#)(?P<rest>.*)")
_DATE = re.compile(r"^(?P<y>\d{4})[.\-/](?P<m>\d{1,2})[.\-/](?P<d>\d{1,2})$")
_MONTH_HEADING = re.compile(r"^#(?!#)\s*(?P<y>\d{4})\s*年\s*(?P<m>\d{1,2})\s*月\s*$")
_ITEM = re.compile(r"^ {0,3}(?P<n>\d{1,4})(?:[.．](?=\s|$)|、)(?P<text>.*)")
_URL_LINE = re.compile(r"^\s+<?(?P<url>[A-Za-z][A-Za-z0-9+.\-]*:\S+?|www\.\S+?)>?\s*$")
_HTTP = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)
_FILE_MONTH = re.compile(r"(?<!\d)(?P<y>\d{4})[-_]?(?P<m>\d{2})(?!\d)")

ISSUE_HEADING_HELP = "expected '## YYYY.MM.DD', for example '## 2025.02.14'"
_SHOWN = 100  # characters of the offending text a message quotes


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def split_lines(text: str) -> list[str]:
    """The lines of a file: broken at LF, CRLF and CR, nothing else."""
    return _LINE_BREAK.split(text)


@dataclass
class _Draft:
    """An issue being read: the parts collected so far."""

    date: dt.date | None
    heading_line: int
    title: str = ""
    items: list[tuple[int, int, list[str], list[str]]] = field(default_factory=list)
    # Items past MAX_ITEMS_PER_ISSUE: how many, and the line of the first; while
    # ``dropping``, the lines read belong to one of them.
    dropped: int = 0
    dropped_line: int = 0
    dropping: bool = False


def file_month(name: str, text: str) -> tuple[int, int] | None:
    """The month a file is for: from its name (``newsflash-202502.md``) or its ``# 2025年2月``."""
    m = _FILE_MONTH.search(Path(name).stem)
    if m and 1 <= int(m["m"]) <= 12:
        return int(m["y"]), int(m["m"])
    for line in _LINE_BREAK.split(text, maxsplit=20)[:20]:
        h = _MONTH_HEADING.match(line.strip())
        if h and 1 <= int(h["m"]) <= 12:
            return int(h["y"]), int(h["m"])
    return None


def decode(name: str, data: bytes) -> tuple[str | None, list[Problem]]:
    """Bytes of a file to text; invalid UTF-8 is reported with the line it happens on."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = len(_LINE_BREAK_BYTES.findall(data, 0, err.start)) + 1
        msg = f"not valid UTF-8 (byte 0x{data[err.start]:02x}); file skipped, save it as UTF-8"
        return None, [Problem(name, line, Severity.ERROR, msg)]
    if not text.strip():
        return None, [Problem(name, 1, Severity.WARNING, "file is empty")]
    return text, []


def parse_text(name: str, text: str) -> ParseResult:
    """Parse one archive file's text. Never raises: problems are collected and reported."""
    parser = _Parser(name, file_month(name, text))
    for number, line in enumerate(split_lines(text), start=1):
        parser.feed(number, line)
    parser.finish()
    return parser.result


def parse_bytes(name: str, data: bytes) -> ParseResult:
    text, problems = decode(name, data)
    if text is None:
        return ParseResult(problems=problems)
    return parse_text(name, text)


class _Parser:
    def __init__(self, name: str, month: tuple[int, int] | None) -> None:
        self.name = name
        self.month = month
        self.result = ParseResult()
        self.draft: _Draft | None = None
        self.skipping = False  # inside an issue whose heading could not be read
        self.reported_stray = False

    def report(self, line: int, severity: Severity, message: str) -> None:
        self.result.problems.append(Problem(self.name, line, severity, message))

    def feed(self, n: int, line: str) -> None:
        if not line.strip():
            return
        heading = _HEADING.match(line) if line.startswith("##") else None
        if heading:
            self.finish()
            self.start_issue(n, heading["rest"].strip())
        elif self.skipping:
            return
        elif self.draft is None:
            self.outside_issue(n, line)
        else:
            self.inside_issue(n, line, self.draft)

    def start_issue(self, n: int, rest: str) -> None:
        m = _DATE.match(rest)
        if not m:
            self.report(
                n,
                Severity.ERROR,
                f"unreadable issue heading '## {_shown(rest)}': {ISSUE_HEADING_HELP}",
            )
            self.skipping = True
            return
        try:
            date = dt.date(int(m["y"]), int(m["m"]), int(m["d"]))
        except ValueError:
            self.report(n, Severity.ERROR, f"impossible date '{_shown(rest)}'; issue skipped")
            self.skipping = True
            return
        self.skipping = False
        self.reported_stray = False
        if self.month and (date.year, date.month) != self.month:
            y, mo = self.month
            self.report(
                n,
                Severity.WARNING,
                f"issue {date:%Y.%m.%d} is in the file for {y}-{mo:02d}; "
                f"move it to the file for {date:%Y-%m}",
            )
        self.draft = _Draft(date, n)

    def outside_issue(self, n: int, line: str) -> None:
        if _MONTH_HEADING.match(line.strip()) or line.startswith("# "):
            return
        if not self.reported_stray:
            self.report(
                n, Severity.WARNING, "text before the first '## YYYY.MM.DD' heading is ignored"
            )
            self.reported_stray = True

    def inside_issue(self, n: int, line: str, draft: _Draft) -> None:
        item = _ITEM.match(line)
        if item and not line.startswith("    "):
            if not draft.items and not draft.title:
                self.report(n, Severity.WARNING, "issue has no title line before its first item")
            if len(draft.items) >= MAX_ITEMS_PER_ISSUE:
                draft.dropped_line = draft.dropped_line or n
                draft.dropped += 1
                draft.dropping = True
                return
            draft.items.append((int(item["n"]), n, [item["text"].strip()], []))
            return
        if draft.dropping:
            return  # a continuation or URL line of an item that is left out
        if not draft.items:
            if draft.title:
                self.stray(n, line)
            else:
                draft.title = line.strip()
            return
        _, _, texts, urls = draft.items[-1]
        if not line[:1].isspace():
            self.stray(n, line)  # neither a URL line nor a continuation: both are indented
        elif url := _URL_LINE.match(line):
            self.add_url(n, url["url"], urls)
        else:
            texts.append(line.strip())

    def add_url(self, n: int, url: str, urls: list[str]) -> None:
        if url.startswith("www."):
            url = "https://" + url
        if not _HTTP.match(url):
            self.report(n, Severity.WARNING, f"URL '{_shown(url)}' is not http(s); it is left out")
            return
        urls.append(url)

    def stray(self, n: int, line: str) -> None:
        self.report(
            n,
            Severity.WARNING,
            "text belongs to no item; start items with 'N. ' and indent continuation lines",
        )

    def finish(self) -> None:
        draft, self.draft = self.draft, None
        if draft is None or draft.date is None:
            return
        if not draft.items:
            self.report(
                draft.heading_line, Severity.ERROR, f"issue {draft.date:%Y.%m.%d} has no items"
            )
            self.result.broken_dates.add(draft.date)
            return
        if draft.dropped:
            self.report(
                draft.dropped_line,
                Severity.ERROR,
                f"issue {draft.date:%Y.%m.%d} has {len(draft.items) + draft.dropped} items, "
                f"more than the {MAX_ITEMS_PER_ISSUE} one issue can hold; the {draft.dropped} "
                "from this line on are left out (split the issue)",
            )
        self.result.issues.append(self.build(draft, draft.date))

    def build(self, draft: _Draft, date: dt.date) -> Issue:
        items: list[Item] = []
        expected = 1
        for number, line, texts, urls in draft.items:
            if number != expected:
                what = "repeats" if number < expected else "skips"
                self.report(
                    line,
                    Severity.WARNING,
                    f"item numbering {what}: expected {expected}, found {number}",
                )
            expected = number + 1
            text = " ".join(t for t in texts if t)
            if not text:
                self.report(
                    line, Severity.ERROR, f"item {number} has no text (an issue pushed unfinished?)"
                )
            # The links of the whole text: those in a part cut off below are still shown.
            listed = set(urls)
            all_urls = [u for u in inline_urls(text) if u not in listed] + urls
            if len(text) > MAX_ITEM_CHARS:
                self.report(
                    line,
                    Severity.WARNING,
                    f"item {number} is {len(text)} characters; truncated to {MAX_ITEM_CHARS}",
                )
                text = text[: safe_cut(text, MAX_ITEM_CHARS)].rstrip()
            items.append(Item(number, text, tuple(dict.fromkeys(all_urls)), line))
        return Issue(date, draft.title, tuple(items), self.name, draft.heading_line)


@dataclass(frozen=True)
class Decl:
    """Where a file declares an issue: enough to decide a duplicate without re-reading it."""

    date: dt.date
    file: str
    line: int
    right_month: bool


def declarations(result: ParseResult, month: tuple[int, int] | None) -> list[Decl]:
    return [
        Decl(i.date, i.file, i.line, month is None or (i.date.year, i.date.month) == month)
        for i in result.issues
    ]


def _rank(decl: Decl) -> tuple[bool, str, int]:
    # The copy in its own month's file wins; otherwise the later one, as a correction
    # appended after the original would be.
    return (decl.right_month, decl.file, decl.line)


def resolve(decls: Iterable[Decl]) -> tuple[dict[dt.date, Decl], list[Problem]]:
    """Pick one declaration per date and report every duplicate, naming both places."""
    by_date: dict[dt.date, list[Decl]] = {}
    for decl in decls:
        by_date.setdefault(decl.date, []).append(decl)
    winners: dict[dt.date, Decl] = {}
    problems: list[Problem] = []
    for date, group in by_date.items():
        winner = max(group, key=_rank)
        winners[date] = winner
        for loser in sorted(group, key=_rank):
            if loser is winner:
                continue
            msg = (
                f"issue {date:%Y.%m.%d} also appears at {winner.file}:{winner.line}; "
                f"that one is used and this one is ignored"
            )
            problems.append(Problem(loser.file, loser.line, Severity.WARNING, msg))
    return winners, problems


def content_files(root: Path) -> list[Path]:
    """Every ``*.md`` under the content directory, in a stable order. Linked folders are
    followed (someone linked them in on purpose; ``rglob`` skips them without a word),
    each real folder once, so a link back up the tree is no loop."""
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        found += [Path(folder) / f for f in files if f.endswith(".md")]
    return sorted(p for p in found if p.is_file())


def display_name(path: Path) -> str:
    """A path for messages: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class Archive:
    issues: dict[dt.date, Issue]
    problems: list[Problem]

    @property
    def item_count(self) -> int:
        return sum(len(i.items) for i in self.issues.values())


def read_archive(root: Path) -> Archive:
    """Read and check every file (what ``briefbot check`` does); duplicates resolved."""
    parsed: dict[str, ParseResult] = {}
    decls: list[Decl] = []
    problems: list[Problem] = []
    if not root.is_dir():
        problems.append(Problem(str(root), 0, Severity.ERROR, "content directory does not exist"))
    for path in content_files(root) if root.is_dir() else []:
        name = display_name(path)
        data = path.read_bytes()
        result = parse_bytes(name, data)
        parsed[name] = result
        problems.extend(result.problems)
        text = data.decode("utf-8", "replace")
        decls.extend(declarations(result, file_month(name, text)))
    winners, dup_problems = resolve(decls)
    problems.extend(dup_problems)
    issues: dict[dt.date, Issue] = {}
    for result in parsed.values():
        for issue in result.issues:
            w = winners[issue.date]
            if (w.file, w.line) == (issue.file, issue.line):
                issues[issue.date] = issue
    problems.sort(key=lambda p: (p.file, p.line))
    return Archive(dict(sorted(issues.items())), problems)
