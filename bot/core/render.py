"""Telegram HTML messages (and plain-text twins) for issues, single items and search pages.

Pure: values in, strings out. Content is first turned into styled runs, cut to fit by
:mod:`bot.core.cutting` (lengths on what the reader sees, in UTF-16 units; cuts on runs,
never inside a tag), then each part is rendered on its own. Search hits are windowed around
their first mark and the marks set in bold here.

Every function takes ``lang`` so handlers can pass it blindly; only search headers have words.

Everything here is linear (or n log n) in what it is given, however many runs, marks, links
or items that is: slices are found by bisection, joined text is built once, and no step
rescans what an earlier step has already passed.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from itertools import groupby
from urllib.parse import urlsplit

from bot.core.cutting import (
    ELLIPSIS,
    Run,
    Runs,
    Slicer,
    fit,
    lstrip_at,
    merge_runs,
    rstrip_at,
    split_runs,
    text_of,
    truncate,
    unit_prefix,
    units_of,
    utf16_len,
)
from bot.core.markdown import Span, Style, inline_urls, parse_inline
from bot.core.model import Hit, Issue, Item, SearchPage

__all__ = [  # utf16_len and ELLIPSIS are read here by the replies and the tests
    "ELLIPSIS",
    "MAX_UTF16",
    "MIN_LIMIT",
    "escape",
    "escape_attr",
    "hit_heading",
    "issue_messages",
    "issue_plain",
    "item_html",
    "search_page_html",
    "search_page_plain",
    "short_label",
    "utf16_len",
]

MAX_UTF16 = 4096
MIN_LIMIT = 16  # below this even a header and an ellipsis cannot be promised to fit

_SEP = "\n\n"
# Telegram drops links with other schemes; showing their label as text loses nothing.
_LINKABLE = ("http://", "https://", "tg://")


@dataclass(frozen=True)
class _Words:
    quote: str
    count_sep: str
    count: str
    count_one: str
    span: str
    span_one: str


_LANGS = {
    "zh": _Words("“{}”", " ", "共 {n} 条结果", "共 1 条结果", "（第 {a}–{b} 条）", "（第 {a} 条）"),
    "en": _Words('"{}"', ": ", "{n} results", "1 result", " ({a}–{b})", " ({a})"),
}

_Label = Callable[[str], str]


# --- public API ---------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape text content for Telegram HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    """Escape a double-quoted attribute value (an href)."""
    return escape(text).replace('"', "&quot;")


def issue_messages(issue: Issue, lang: str = "zh", limit: int = MAX_UTF16) -> list[str]:
    """The issue as HTML messages, split between items, each at most ``limit`` visible units."""
    _check_limit(limit)
    return [_html(part) for part in _pack(_issue_blocks(issue, short_label), limit)]


def issue_plain(issue: Issue, lang: str = "zh") -> str:
    """The issue for a terminal: no tags, links as ``label (url)``, extra URLs on their own line."""
    return _plain(_join(_issue_blocks(issue, _as_is)))


def item_html(
    issue_date: dt.date | str, item: Item, lang: str = "zh", limit: int = MAX_UTF16
) -> str:
    """One item as a message (inline results), its text cut with "…" if it would not fit."""
    _check_limit(limit)
    head = [Run(f"{_date_text(issue_date)} #{item.number}", bold=True), Run("\n")]
    body = [_from_span(span) for span in parse_inline(item.text)]
    links = _url_runs(_extra_urls(item.text, item.urls), short_label)
    return _html(fit(head, body, links, limit))


def search_page_html(page: SearchPage, lang: str = "zh", limit: int = MAX_UTF16) -> str:
    """A page of hits as one message; hit texts shrink around their first mark to fit."""
    _check_limit(limit)
    return _html(_search_runs(page, _words(lang), short_label, limit))


def search_page_plain(page: SearchPage, lang: str = "zh") -> str:
    """A page of hits for a terminal, texts in full."""
    return _plain(_search_runs(page, _words(lang), _as_is, None))


def short_label(url: str) -> str:
    """A readable link label: 🔗 and the host, or the URL itself when it has no host."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    return f"🔗 {host.removeprefix('www.')}" if host else url


# --- building runs -------------------------------------------------------------------------


def _check_limit(limit: int) -> None:
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT}, got {limit}")


def _words(lang: str) -> _Words:
    return _LANGS.get(lang, _LANGS["zh"])


def _as_is(url: str) -> str:
    return url


def _date_text(date: dt.date | str) -> str:
    return date.isoformat() if isinstance(date, dt.date) else date


def _from_span(span: Span) -> Run:
    if span.style is Style.BOLD:
        return Run(span.text, bold=True)
    if span.style is Style.CODE:
        return Run(span.text, code=True)
    return Run(span.text, url=span.url if span.style is Style.LINK else "")


def _extra_urls(text: str, urls: Iterable[str]) -> list[str]:
    """The URLs not already linked inside the text, once each, in order."""
    inline = set(inline_urls(text))
    return [url for url in dict.fromkeys(urls) if url not in inline]


def _url_runs(urls: Iterable[str], label: _Label) -> Runs:
    runs: Runs = []
    for url in urls:
        runs += [Run("\n"), Run(label(url), url=url)]
    return runs


def _item_runs(item: Item, label: _Label) -> Runs:
    body = [_from_span(span) for span in parse_inline(item.text)]
    return [Run(f"{item.number}. "), *body, *_url_runs(_extra_urls(item.text, item.urls), label)]


def _issue_blocks(issue: Issue, label: _Label) -> list[Runs]:
    title = " · ".join(part for part in (issue.date.isoformat(), issue.title.strip()) if part)
    return [[Run(title, bold=True)], *(_item_runs(item, label) for item in issue.items)]


def _join(blocks: Iterable[Runs], sep: str = _SEP) -> Runs:
    runs: Runs = []
    for block in blocks:
        runs += [Run(sep), *block] if runs else block
    return runs


# --- rendering -----------------------------------------------------------------------------


def _link(run: Run) -> str:
    return run.url if run.url.startswith(_LINKABLE) else ""


def _html(runs: Iterable[Run]) -> str:
    out: list[str] = []
    for url, group in groupby(merge_runs(runs), key=_link):
        inner = "".join(_html_run(run) for run in group)
        out.append(f'<a href="{escape_attr(url)}">{inner}</a>' if url else inner)
    return "".join(out)


def _html_run(run: Run) -> str:
    text = escape(run.text)
    # Telegram lets nothing nest inside or around code, so code wins over a search mark.
    if run.code:
        return f"<code>{text}</code>"
    return f"<b>{text}</b>" if run.bold else text


def _plain(runs: Iterable[Run]) -> str:
    out: list[str] = []
    for url, group in groupby(merge_runs(runs), key=lambda run: run.url):
        label = text_of(group)
        out.append(label if not url or label == url else f"{label} ({url})")
    return "".join(out)


# --- issues --------------------------------------------------------------------------------


def _pack(blocks: Iterable[Runs], limit: int) -> list[Runs]:
    """Fill messages with whole blocks; a block bigger than a message is cut, its first
    piece taking what is left of the current message if that is worth it."""
    parts: list[Runs] = []
    current: Runs = []
    used = 0  # units in current, kept as it grows: measuring it again is quadratic
    sep = utf16_len(_SEP)
    for block in blocks:
        room = limit - used - sep if current else limit
        size = units_of(block)
        if size <= room:
            if current:
                current += [Run(_SEP), *block]
                used += sep + size
            else:
                current, used = list(block), size
            continue
        if size <= limit or room < limit // 4:
            pieces = split_runs(block, limit, limit) if size > limit else [block]
            if not pieces:  # nothing visible but whitespace
                continue
            parts += [current] if current else []
            current = list(pieces[0])
        else:
            pieces = split_runs(block, room, limit)
            if not pieces:
                continue
            current = [*current, Run(_SEP), *pieces[0]] if current else list(pieces[0])
        for piece in pieces[1:]:
            parts.append(current)
            current = list(piece)
        used = units_of(current)
    return [*parts, current] if current else parts


# --- search pages --------------------------------------------------------------------------


def _search_header(page: SearchPage, words: _Words) -> str:
    terms = " ".join(words.quote.format(term) for term in page.terms)
    count = words.count_one if page.total == 1 else words.count.format(n=page.total)
    first, last = page.offset + 1, page.offset + len(page.hits)
    if not page.hits:
        span = ""
    elif first == last:
        span = words.span_one.format(a=first)
    else:
        span = words.span.format(a=first, b=last)
    return f"🔎 {terms}{words.count_sep}{count}{span}"


class _Body:
    """A hit's text as runs, with its marks (their union, clipped, in order) and the UTF-16
    units before each character, so a window's size is arithmetic and only the window is
    ever cut into runs and marked."""

    def __init__(self, hit: Hit) -> None:
        self.runs = Slicer([_from_span(span) for span in parse_inline(hit.text)])
        self.text = text = self.runs.text
        self.units = unit_prefix(text)
        size = len(text)
        marks = sorted((max(a, 0), min(b, size)) for a, b in hit.marks if max(a, 0) < min(b, size))
        # A stretch is bold when some mark covers it, so the union of the marks is what counts.
        union: list[tuple[int, int]] = []
        for a, b in marks:
            if union and a <= union[-1][1]:
                union[-1] = (union[-1][0], max(b, union[-1][1]))
            else:
                union.append((a, b))
        self.marks = union
        self.mark_ends = [b for _, b in union]
        self.focus = hit.marks[0][0] if hit.marks else 0

    def span(self, width: int | None) -> tuple[int, int]:
        """The visible characters shown at this width (start == end: only "…")."""
        text = self.text
        if width is None or len(text) <= width:
            return 0, len(text)
        # The mark sits a third of the way in: readers read on more than they read back.
        start = max(0, min(self.focus - width // 3, len(text) - width))
        end = rstrip_at(text, start, start + width)
        return min(lstrip_at(text, start), end), end

    def size(self, width: int | None) -> int:
        """``units_of(self.window(width))``, without building it."""
        start, end = self.span(width)
        if start == end and (start, end) != (0, len(self.text)):
            return utf16_len(ELLIPSIS)
        dots = (start > 0) + (end < len(self.text))
        return self.units[end] - self.units[start] + dots * utf16_len(ELLIPSIS)

    def window(self, width: int | None) -> Runs:
        """About ``width`` characters around the first mark, marks in bold, "…" where cut."""
        start, end = self.span(width)
        if start == end and (start, end) != (0, len(self.text)):
            return [Run(ELLIPSIS)]
        lead = [Run(ELLIPSIS)] if start > 0 else []
        trail = [Run(ELLIPSIS)] if end < len(self.text) else []
        return [*lead, *self.marked(start, end), *trail]

    def marked(self, start: int, end: int) -> Runs:
        """The runs of ``text[start:end]``, bold where a mark covers them."""
        union = self.marks
        out: Runs = []
        pos = start  # where the current run starts
        i = bisect_right(self.mark_ends, start)  # the first mark that does not end by start
        for run in self.runs(start, end):
            stop_run, cur = pos + len(run.text), pos
            while cur < stop_run:
                while i < len(union) and union[i][1] <= cur:
                    i += 1
                bold = i < len(union) and union[i][0] <= cur
                nxt = union[i][1] if bold else union[i][0] if i < len(union) else stop_run
                stop = min(stop_run, nxt)
                whole = (cur, stop) == (pos, stop_run)
                piece = run if whole else replace(run, text=run.text[cur - pos : stop - pos])
                out.append(replace(piece, bold=True) if bold else piece)
                cur = stop
            pos = stop_run
        return out


def hit_heading(hit: Hit) -> str:
    """``2024-05-15 #3``, and the other dates of the same text (``· 2024-05-14 #3``)."""
    head = f"{_date_text(hit.date)} #{hit.number}"
    return " · ".join([head, *(f"{_date_text(d)} #{n}" for d, n in hit.also)])


def _search_runs(page: SearchPage, words: _Words, label: _Label, limit: int | None) -> Runs:
    header = [Run(_search_header(page, words))]
    hits = [
        (
            [Run(hit_heading(hit), bold=True), Run("\n")],
            _Body(hit),
            _url_runs(_extra_urls(hit.text, hit.urls), label),
        )
        for hit in page.hits
    ]
    # The page without its windows: the header, and each hit's head, links and separator.
    frame = units_of(header) + sum(
        utf16_len(_SEP) + units_of(h) + units_of(ls) for h, _, ls in hits
    )

    def build(width: int | None) -> Runs:
        return _join([header, *([*head, *body.window(width), *ls] for head, body, ls in hits)])

    def fits(width: int | None) -> bool:
        assert limit is not None
        return frame + sum(body.size(width) for _, body, _ in hits) <= limit

    if limit is None or fits(None):
        return build(None)
    widest = max((len(body.text) for _, body, _ in hits), default=0)
    return truncate(build(_widest_fit(fits, widest)), limit)


def _widest_fit(fits: Callable[[int], bool], widest: int) -> int:
    """The largest window width (0..widest) whose page fits; 0 if none does."""
    lo, hi = 0, widest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo
