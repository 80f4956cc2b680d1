"""Styled runs of visible text, and cutting them to fit Telegram's limit.

A run is a stretch of visible text with one style. Lengths are measured on what the reader
sees (Telegram's 4096 limit counts the text after entity parsing, in UTF-16 units), and
content is cut on runs, never on the HTML: slicing a string of HTML could land inside a tag
or an ``&amp;``. A cut prefers the end of a sentence, then whitespace, then any boundary
between visible characters, and never splits an emoji sequence, a combining mark or a flag.
:mod:`bot.core.render` builds the runs and renders each part.

Everything here is linear (or n log n) in what it is given: slices are found by bisection
and no step rescans what an earlier step has already passed.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import accumulate, groupby

ELLIPSIS = "…"

# Full-width marks end a sentence whatever follows (Chinese has no spaces); an ASCII one only
# when no letter or digit follows, so "Qwen2.5" and "example.com" stay whole.
_SENTENCE_END = re.compile(r"(?:[。！？；]|[.!?](?![0-9A-Za-z]))[”’」』）)\]\"']*")
_SPACE = re.compile(r"\s")
_ZWJ = "\u200d"


@dataclass(frozen=True)
class Run:
    """A stretch of visible text with one style; ``url`` set means it is (part of) a link."""

    text: str
    bold: bool = False
    code: bool = False
    url: str = ""


Runs = list[Run]


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: a character outside the BMP takes two units."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def text_of(runs: Iterable[Run]) -> str:
    return "".join(run.text for run in runs)


def units_of(runs: Iterable[Run]) -> int:
    return utf16_len(text_of(runs))


def unit_prefix(text: str) -> Sequence[int]:
    """``units[i]``: the UTF-16 units in ``text[:i]``; a range when every character is one."""
    if utf16_len(text) == len(text):
        return range(len(text) + 1)
    return [0, *accumulate(utf16_len(ch) for ch in text)]


def merge_runs(runs: Iterable[Run]) -> Runs:
    """Drop empty runs and fuse neighbours of one style, so tags are not repeated."""
    merged: Runs = []
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


# --- cutting -------------------------------------------------------------------------------


class Slicer:
    """Runs, cut by visible characters: ``slicer(start, end)`` is the runs covering
    ``text[start:end]``, and costs the runs it covers (and a bisection), not all of them.
    ``text`` is their visible text."""

    def __init__(self, runs: Sequence[Run]) -> None:
        self.runs = runs
        self.starts = [0, *accumulate(len(run.text) for run in runs)]
        self.text = text_of(runs)

    def __call__(self, start: int, end: int) -> Runs:
        out: Runs = []
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


def _guarded(runs: Iterable[Run]) -> list[tuple[int, int]]:
    """Visible ranges of links and code, which are only cut when nothing else works."""
    ranges: list[tuple[int, int]] = []
    pos = 0
    for key, group in groupby(merge_runs(runs), key=lambda run: run.url or run.code):
        end = pos + len(text_of(group))
        if key:
            ranges.append((pos, end))
        pos = end
    return ranges


def split_runs(runs: Runs, first: int, rest: int) -> list[Runs]:
    """Cut runs into pieces of at most ``first``, then ``rest``, UTF-16 units (both >= 2).

    Whitespace at each cut is dropped; nothing else is lost.
    """
    return list(_iter_pieces(runs, first, rest))


def _iter_pieces(runs: Runs, first: int, rest: int) -> Iterator[Runs]:
    """The non-empty pieces of ``split_runs``, one at a time (``truncate`` needs only one)."""
    cut_runs = Slicer(runs)
    text = cut_runs.text
    units = unit_prefix(text)
    guarded = _Guarded(_guarded(runs))
    flag_cuts = _flag_cuts(text)
    start, room = 0, first
    while units[-1] - units[start] > room:
        end = max(bisect_right(units, units[start] + room) - 1, start + 1)
        cut = _best_cut(text, start, end, guarded, flag_cuts)
        if piece := cut_runs(start, rstrip_at(text, start, cut)):
            yield piece
        start, room = lstrip_at(text, cut), rest
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


def rstrip_at(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def lstrip_at(text: str, start: int) -> int:
    while start < len(text) and text[start].isspace():
        start += 1
    return start


def truncate(runs: Runs, limit: int) -> Runs:
    """The runs cut to fit ``limit`` units, "…" included when something was dropped."""
    if units_of(runs) <= limit:
        return runs
    first = next(_iter_pieces(runs, limit - 1, limit - 1), [])
    return [*first, Run(ELLIPSIS)]


def fit(head: Runs, body: Runs, tail: Runs, limit: int) -> Runs:
    """Head, body and tail within ``limit``, shortening the body first."""
    room = limit - units_of(head) - units_of(tail)
    if units_of(body) <= room:
        return [*head, *body, *tail]
    if room >= 3:
        return [*head, *truncate(body, room), *tail]
    return truncate([*head, *body, *tail], limit)
