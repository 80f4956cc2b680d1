"""Telegram HTML messages (and plain-text twins) for issues, single items and search pages.

Pure: values in, strings out. Content is first turned into styled runs; lengths are measured
on what the reader sees (Telegram's 4096 limit counts the text after entity parsing, in UTF-16
units) and long content is cut on runs, then each part is rendered on its own. Slicing the HTML
string instead could land inside a tag or an ``&amp;``.

Every function takes ``lang`` so handlers can pass it blindly; only search headers have words.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, groupby, pairwise
from urllib.parse import urlsplit

from bot.core.markdown import Span, Style, inline_urls, parse_inline
from bot.core.model import Hit, Issue, Item, SearchPage

MAX_UTF16 = 4096
MIN_LIMIT = 16  # below this even a header and an ellipsis cannot be promised to fit
ELLIPSIS = "…"

_SEP = "\n\n"
# Telegram drops links with other schemes; showing their label as text loses nothing.
_LINKABLE = ("http://", "https://", "tg://")
# Full-width marks end a sentence whatever follows (Chinese has no spaces); an ASCII one only
# when no letter or digit follows, so "Qwen2.5" and "example.com" stay whole.
_SENTENCE_END = re.compile(r"(?:[。！？；]|[.!?](?![0-9A-Za-z]))[”’」』）)\]\"']*")
_SPACE = re.compile(r"\s")
_ZWJ = "\u200d"


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


@dataclass(frozen=True)
class _Run:
    """A stretch of visible text with one style; ``url`` set means it is (part of) a link."""

    text: str
    bold: bool = False
    code: bool = False
    url: str = ""


_Runs = list[_Run]
_Label = Callable[[str], str]


# --- public API ---------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: a character outside the BMP takes two units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


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
    head = [_Run(f"{_date_text(issue_date)} #{item.number}", bold=True), _Run("\n")]
    body = [_from_span(span) for span in parse_inline(item.text)]
    links = _url_runs(_extra_urls(item.text, item.urls), short_label)
    return _html(_fit(head, body, links, limit))


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


def _from_span(span: Span) -> _Run:
    if span.style is Style.BOLD:
        return _Run(span.text, bold=True)
    if span.style is Style.CODE:
        return _Run(span.text, code=True)
    return _Run(span.text, url=span.url if span.style is Style.LINK else "")


def _extra_urls(text: str, urls: Iterable[str]) -> list[str]:
    """The URLs not already linked inside the text, once each, in order."""
    inline = set(inline_urls(text))
    return [url for url in dict.fromkeys(urls) if url not in inline]


def _url_runs(urls: Iterable[str], label: _Label) -> _Runs:
    runs: _Runs = []
    for url in urls:
        runs += [_Run("\n"), _Run(label(url), url=url)]
    return runs


def _item_runs(item: Item, label: _Label) -> _Runs:
    body = [_from_span(span) for span in parse_inline(item.text)]
    return [_Run(f"{item.number}. "), *body, *_url_runs(_extra_urls(item.text, item.urls), label)]


def _issue_blocks(issue: Issue, label: _Label) -> list[_Runs]:
    title = " · ".join(part for part in (issue.date.isoformat(), issue.title.strip()) if part)
    return [[_Run(title, bold=True)], *(_item_runs(item, label) for item in issue.items)]


def _join(blocks: Iterable[_Runs], sep: str = _SEP) -> _Runs:
    runs: _Runs = []
    for block in blocks:
        runs += [_Run(sep), *block] if runs else block
    return runs


# --- rendering -----------------------------------------------------------------------------


def _visible(runs: Iterable[_Run]) -> str:
    return "".join(run.text for run in runs)


def _units(runs: Iterable[_Run]) -> int:
    return utf16_len(_visible(runs))


def _link(run: _Run) -> str:
    return run.url if run.url.startswith(_LINKABLE) else ""


def _merge(runs: Iterable[_Run]) -> _Runs:
    """Drop empty runs and fuse neighbours of one style, so tags are not repeated."""
    merged: _Runs = []
    for run in runs:
        if not run.text:
            continue
        last = merged[-1] if merged else None
        if last and (last.bold, last.code, last.url) == (run.bold, run.code, run.url):
            merged[-1] = replace(last, text=last.text + run.text)
        else:
            merged.append(run)
    return merged


def _html(runs: Iterable[_Run]) -> str:
    out: list[str] = []
    for url, group in groupby(_merge(runs), key=_link):
        inner = "".join(_html_run(run) for run in group)
        out.append(f'<a href="{escape_attr(url)}">{inner}</a>' if url else inner)
    return "".join(out)


def _html_run(run: _Run) -> str:
    text = escape(run.text)
    # Telegram lets nothing nest inside or around code, so code wins over a search mark.
    if run.code:
        return f"<code>{text}</code>"
    return f"<b>{text}</b>" if run.bold else text


def _plain(runs: Iterable[_Run]) -> str:
    out: list[str] = []
    for url, group in groupby(_merge(runs), key=lambda run: run.url):
        label = _visible(group)
        out.append(label if not url or label == url else f"{label} ({url})")
    return "".join(out)


# --- cutting -------------------------------------------------------------------------------


def _slice(runs: Iterable[_Run], start: int, end: int) -> _Runs:
    """The runs covering visible characters ``start:end``."""
    out: _Runs = []
    pos = 0
    for run in runs:
        lo, hi = max(start, pos), min(end, pos + len(run.text))
        if lo < hi:
            out.append(replace(run, text=run.text[lo - pos : hi - pos]))
        pos += len(run.text)
    return out


def _guarded(runs: Iterable[_Run]) -> list[tuple[int, int]]:
    """Visible ranges of links and code, which are only cut when nothing else works."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    for key, group in groupby(_merge(runs), key=lambda run: run.url or run.code):
        end = pos + len(_visible(group))
        if key:
            ranges.append((pos, end))
        pos = end
    return ranges


def _pieces(runs: _Runs, first: int, rest: int) -> list[_Runs]:
    """Cut runs into pieces of at most ``first``, then ``rest``, UTF-16 units (both >= 2).

    Whitespace at each cut is dropped; nothing else is lost.
    """
    text = _visible(runs)
    units = [0, *accumulate(utf16_len(ch) for ch in text)]  # units[i]: units in text[:i]
    guarded = _guarded(runs)
    pieces: list[_Runs] = []
    start, room = 0, first
    while units[-1] - units[start] > room:
        end = max(bisect_right(units, units[start] + room) - 1, start + 1)
        cut = _best_cut(text, start, end, guarded)
        pieces.append(_slice(runs, start, _rstrip(text, start, cut)))
        start, room = _lstrip(text, cut), rest
    pieces.append(_slice(runs, start, len(text)))
    return [piece for piece in pieces if piece]


def _best_cut(text: str, start: int, end: int, guarded: Sequence[tuple[int, int]]) -> int:
    """Where to end a piece within ``text[start:end]``: after the last sentence that fits,
    else at the last whitespace, else at the last boundary between visible characters.

    Only the second half of the window is considered first, so that a boundary near its
    start (the "1." of an item) does not leave a crumb of a message behind.
    """
    half = start + max((end - start) // 2, 1)

    def clean(cut: int) -> bool:
        return cut >= half and not any(lo < cut < hi for lo, hi in guarded)

    window = text[start:end]
    sentences = [start + m.end() for m in _SENTENCE_END.finditer(window)]
    # One character past the window: a space right after it is a clean cut too.
    spaces = [m.start() for m in _SPACE.finditer(text, start, end + 1)]
    hard = [cut for cut in range(start + 1, end + 1) if not _joined(text, cut)]
    for candidates in (sentences, spaces, hard):
        for cut in reversed(candidates):
            if clean(cut):
                return cut
    return next(reversed(hard), end)


def _joined(text: str, cut: int) -> bool:
    """Whether cutting before ``text[cut]`` would break a visible character (emoji
    sequence, combining mark, flag); Python strings never split a surrogate pair."""
    if cut <= 0 or cut >= len(text):
        return False
    prev, nxt = text[cut - 1], text[cut]
    # Marks (category M) include the emoji variation selector U+FE0F.
    if _ZWJ in (prev, nxt) or unicodedata.category(nxt).startswith("M"):
        return True
    # Skin-tone modifiers, and the tag characters of subdivision flags.
    if "\U0001f3fb" <= nxt <= "\U0001f3ff" or "\U000e0020" <= nxt <= "\U000e007f":
        return True
    return _is_flag_half(prev) and _is_flag_half(nxt) and _flag_run(text, cut) % 2 == 1


def _is_flag_half(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _flag_run(text: str, cut: int) -> int:
    count = 0
    while cut - count > 0 and _is_flag_half(text[cut - count - 1]):
        count += 1
    return count


def _rstrip(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _lstrip(text: str, start: int) -> int:
    while start < len(text) and text[start].isspace():
        start += 1
    return start


def _truncate(runs: _Runs, limit: int) -> _Runs:
    """The runs cut to fit ``limit`` units, "…" included when something was dropped."""
    if _units(runs) <= limit:
        return runs
    pieces = _pieces(runs, limit - 1, limit - 1)
    return [*(pieces[0] if pieces else []), _Run(ELLIPSIS)]


def _fit(head: _Runs, body: _Runs, tail: _Runs, limit: int) -> _Runs:
    """Head, body and tail within ``limit``, shortening the body first."""
    room = limit - _units(head) - _units(tail)
    if _units(body) <= room:
        return [*head, *body, *tail]
    if room >= 3:
        return [*head, *_truncate(body, room), *tail]
    return _truncate([*head, *body, *tail], limit)


# --- issues --------------------------------------------------------------------------------


def _pack(blocks: Iterable[_Runs], limit: int) -> list[_Runs]:
    """Fill messages with whole blocks; a block bigger than a message is cut, its first
    piece taking what is left of the current message if that is worth it."""
    parts: list[_Runs] = []
    current: _Runs = []
    for block in blocks:
        room = limit - _units(current) - utf16_len(_SEP) if current else limit
        size = _units(block)
        if size <= room:
            current = _join([current, block]) if current else block
            continue
        if size <= limit or room < limit // 4:
            pieces = _pieces(block, limit, limit) if size > limit else [block]
            parts += [current] if current else []
            current = pieces[0]
        else:
            pieces = _pieces(block, room, limit)
            current = _join([current, pieces[0]]) if current else pieces[0]
        for piece in pieces[1:]:
            parts.append(current)
            current = piece
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


def _marked(hit: Hit) -> _Runs:
    """The hit's text as runs, with the ranges in ``hit.marks`` made bold."""
    runs = [_from_span(span) for span in parse_inline(hit.text)]
    size = len(_visible(runs))
    marks = [(max(a, 0), min(b, size)) for a, b in hit.marks if max(a, 0) < min(b, size)]
    bounds = sorted({0, size, *(edge for mark in marks for edge in mark)})
    out: _Runs = []
    for lo, hi in pairwise(bounds):
        bold = any(a <= lo and hi <= b for a, b in marks)
        out += [replace(run, bold=True) if bold else run for run in _slice(runs, lo, hi)]
    return out


def _window(runs: _Runs, focus: int, width: int | None) -> _Runs:
    """About ``width`` characters of the runs around ``focus``, with "…" where cut."""
    text = _visible(runs)
    if width is None or len(text) <= width:
        return runs
    # The mark sits a third of the way in: readers read on more than they read back.
    start = max(0, min(focus - width // 3, len(text) - width))
    end = _rstrip(text, start, start + width)
    start = min(_lstrip(text, start), end)
    if start == end:
        return [_Run(ELLIPSIS)]
    lead = [_Run(ELLIPSIS)] if start > 0 else []
    trail = [_Run(ELLIPSIS)] if end < len(text) else []
    return [*lead, *_slice(runs, start, end), *trail]


def _search_runs(page: SearchPage, words: _Words, label: _Label, limit: int | None) -> _Runs:
    header = [_Run(_search_header(page, words))]
    hits = [
        (
            [_Run(f"{_date_text(hit.date)} #{hit.number}", bold=True), _Run("\n")],
            _marked(hit),
            hit.marks[0][0] if hit.marks else 0,
            _url_runs(_extra_urls(hit.text, hit.urls), label),
        )
        for hit in page.hits
    ]

    def build(width: int | None) -> _Runs:
        blocks = [
            [*head, *_window(body, focus, width), *links] for head, body, focus, links in hits
        ]
        return _join([header, *blocks])

    full = build(None)
    if limit is None or _units(full) <= limit:
        return full
    widest = max((len(_visible(body)) for _, body, _, _ in hits), default=0)
    return _truncate(build(_widest_fit(build, widest, limit)), limit)


def _widest_fit(build: Callable[[int], _Runs], widest: int, limit: int) -> int:
    """The largest window width (0..widest) whose page fits ``limit``; 0 if none does."""
    lo, hi = 0, widest
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _units(build(mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
