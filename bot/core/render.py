"""Telegram HTML messages (and plain-text twins) for issues, single items and search pages.

Pure: values in, strings out. Content is first turned into styled runs; lengths are measured
on what the reader sees (Telegram's 4096 limit counts the text after entity parsing, in UTF-16
units) and long content is cut on runs, then each part is rendered on its own. Slicing the HTML
string instead could land inside a tag or an ``&amp;``.

Every function takes ``lang`` so handlers can pass it blindly; only search headers have words.

Everything here is linear (or n log n) in what it is given, however many runs, marks, links
or items that is: slices are found by bisection, joined text is built once, and no step
rescans what an earlier step has already passed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, groupby
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


def _unit_prefix(text: str) -> Sequence[int]:
    """``units[i]``: the UTF-16 units in ``text[:i]``; a range when every character is one."""
    if utf16_len(text) == len(text):
        return range(len(text) + 1)
    return [0, *accumulate(utf16_len(ch) for ch in text)]


def _merge(runs: Iterable[_Run]) -> _Runs:
    """Drop empty runs and fuse neighbours of one style, so tags are not repeated."""
    merged: _Runs = []
    texts: list[list[str]] = []  # the texts each merged run is made of, joined at the end
    for run in runs:
        if not run.text:
            continue
        last = merged[-1] if merged else None
        if last and (last.bold, last.code, last.url) == (run.bold, run.code, run.url):
            texts[-1].append(run.text)
        else:
            merged.append(run)
            texts.append([run.text])
    return [
        run if len(parts) == 1 else replace(run, text="".join(parts))
        for run, parts in zip(merged, texts, strict=True)
    ]


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


class _Slicer:
    """Runs, cut by visible characters: ``slicer(start, end)`` is the runs covering
    ``text[start:end]``, and costs the runs it covers (and a bisection), not all of them.
    ``text`` is their visible text."""

    def __init__(self, runs: Sequence[_Run]) -> None:
        self.runs = runs
        self.starts = [0, *accumulate(len(run.text) for run in runs)]
        self.text = _visible(runs)

    def __call__(self, start: int, end: int) -> _Runs:
        out: _Runs = []
        starts, runs = self.starts, self.runs
        i = max(bisect_right(starts, start) - 1, 0)
        while i < len(runs) and starts[i] < end:
            pos, run = starts[i], runs[i]
            lo, hi = max(start, pos), min(end, starts[i + 1])
            if lo < hi:
                whole = (lo, hi) == (pos, starts[i + 1])
                out.append(run if whole else replace(run, text=run.text[lo - pos : hi - pos]))
            i += 1
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
    return list(_iter_pieces(runs, first, rest))


def _iter_pieces(runs: _Runs, first: int, rest: int) -> Iterator[_Runs]:
    """The non-empty pieces of ``_pieces``, one at a time (``_truncate`` needs only one)."""
    cut_runs = _Slicer(runs)
    text = cut_runs.text
    units = _unit_prefix(text)
    guarded = _Guarded(_guarded(runs))
    flag_cuts = _flag_cuts(text)
    start, room = 0, first
    while units[-1] - units[start] > room:
        end = max(bisect_right(units, units[start] + room) - 1, start + 1)
        cut = _best_cut(text, start, end, guarded, flag_cuts)
        if piece := cut_runs(start, _rstrip(text, start, cut)):
            yield piece
        start, room = _lstrip(text, cut), rest
    if piece := cut_runs(start, len(text)):
        yield piece


class _Guarded:
    """The sorted, disjoint ranges of ``_guarded``, asked whether a cut falls inside one."""

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        self.los = [lo for lo, _ in ranges]
        self.his = [hi for _, hi in ranges]

    def __contains__(self, cut: object) -> bool:
        assert isinstance(cut, int)
        i = bisect_left(self.los, cut) - 1  # the last range starting before the cut
        return i >= 0 and cut < self.his[i]


def _best_cut(text: str, start: int, end: int, guarded: _Guarded, flag_cuts: set[int]) -> int:
    """Where to end a piece within ``text[start:end]``: after the last sentence that fits,
    else at the last whitespace, else at the last boundary between visible characters.

    Only the second half of the window is considered first, so that a boundary near its
    start (the "1." of an item) does not leave a crumb of a message behind.
    """
    half = start + max((end - start) // 2, 1)

    def clean(cut: int) -> bool:
        return cut >= half and cut not in guarded

    window = text[start:end]
    sentences = [start + m.end() for m in _SENTENCE_END.finditer(window)]
    # One character past the window: a space right after it is a clean cut too.
    spaces = [m.start() for m in _SPACE.finditer(text, start, end + 1)]
    for candidates in (sentences, spaces):
        for cut in reversed(candidates):
            if clean(cut):
                return cut
    # Boundaries between visible characters, from the end: the last clean one, else the last.
    last: int | None = None
    for cut in range(end, start, -1):
        if cut < half and last is not None:
            break  # no clean cut is left, and the last boundary is known
        if _joined(text, cut, flag_cuts):
            continue
        if clean(cut):
            return cut
        last = cut if last is None else last
    return end if last is None else last


def _joined(text: str, cut: int, flag_cuts: set[int]) -> bool:
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
    return cut in flag_cuts


_FLAG_HALVES = re.compile("[\U0001f1e6-\U0001f1ff]{2,}")


def _flag_cuts(text: str) -> set[int]:
    """The cuts that would split a flag: inside a run of regional indicators, after an odd
    number of them (they pair up from the start of the run)."""
    return {cut for m in _FLAG_HALVES.finditer(text) for cut in range(m.start() + 1, m.end(), 2)}


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
    first = next(_iter_pieces(runs, limit - 1, limit - 1), [])
    return [*first, _Run(ELLIPSIS)]


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
    used = 0  # units in current, kept as it grows: measuring it again is quadratic
    sep = utf16_len(_SEP)
    for block in blocks:
        room = limit - used - sep if current else limit
        size = _units(block)
        if size <= room:
            if current:
                current += [_Run(_SEP), *block]
                used += sep + size
            else:
                current, used = list(block), size
            continue
        if size <= limit or room < limit // 4:
            pieces = _pieces(block, limit, limit) if size > limit else [block]
            if not pieces:  # nothing visible but whitespace
                continue
            parts += [current] if current else []
            current = list(pieces[0])
        else:
            pieces = _pieces(block, room, limit)
            if not pieces:
                continue
            current = [*current, _Run(_SEP), *pieces[0]] if current else list(pieces[0])
        for piece in pieces[1:]:
            parts.append(current)
            current = list(piece)
        used = _units(current)
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
        self.runs = _Slicer([_from_span(span) for span in parse_inline(hit.text)])
        self.text = text = self.runs.text
        self.units = _unit_prefix(text)
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
        end = _rstrip(text, start, start + width)
        return min(_lstrip(text, start), end), end

    def size(self, width: int | None) -> int:
        """``_units(self.window(width))``, without building it."""
        start, end = self.span(width)
        if start == end and (start, end) != (0, len(self.text)):
            return utf16_len(ELLIPSIS)
        dots = (start > 0) + (end < len(self.text))
        return self.units[end] - self.units[start] + dots * utf16_len(ELLIPSIS)

    def window(self, width: int | None) -> _Runs:
        """About ``width`` characters around the first mark, marks in bold, "…" where cut."""
        start, end = self.span(width)
        if start == end and (start, end) != (0, len(self.text)):
            return [_Run(ELLIPSIS)]
        lead = [_Run(ELLIPSIS)] if start > 0 else []
        trail = [_Run(ELLIPSIS)] if end < len(self.text) else []
        return [*lead, *self.marked(start, end), *trail]

    def marked(self, start: int, end: int) -> _Runs:
        """The runs of ``text[start:end]``, bold where a mark covers them."""
        union = self.marks
        out: _Runs = []
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


def _search_runs(page: SearchPage, words: _Words, label: _Label, limit: int | None) -> _Runs:
    header = [_Run(_search_header(page, words))]
    hits = [
        (
            [_Run(hit_heading(hit), bold=True), _Run("\n")],
            _Body(hit),
            _url_runs(_extra_urls(hit.text, hit.urls), label),
        )
        for hit in page.hits
    ]
    # The page without its windows: the header, and each hit's head, links and separator.
    frame = _units(header) + sum(utf16_len(_SEP) + _units(h) + _units(ls) for h, _, ls in hits)

    def build(width: int | None) -> _Runs:
        return _join([header, *([*head, *body.window(width), *ls] for head, body, ls in hits)])

    def fits(width: int | None) -> bool:
        assert limit is not None
        return frame + sum(body.size(width) for _, body, _ in hits) <= limit

    if limit is None or fits(None):
        return build(None)
    widest = max((len(body.text) for _, body, _ in hits), default=0)
    return _truncate(build(_widest_fit(fits, widest)), limit)


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
