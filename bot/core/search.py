"""Search, the pure part: reading a query, the gram tokens the index stores, the FTS5
expression built from them, and marking matches.

Every character of the visible text, folded (:mod:`bot.core.fold`: NFKC, Traditional to
Simplified, lower case), is indexed twice: as a unigram in column
``u`` and, with its successor, as a bigram in column ``b``. A term of one character is a
unigram lookup; a longer term is a phrase of its overlapping bigrams, which matches exactly
where the term is a substring. Tokens are hex code points, so user text never reaches
MATCH: only ``[0-9a-f]`` and ``g`` do. The recall test checks this against a naive scan.
"""

from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from dataclasses import dataclass

from bot.core.dates import DateRange, parse_period
from bot.core.fold import expanding, fold_map, sources
from bot.core.fold import fold as fold  # re-exported: callers fold as search does

MAX_QUERY_CHARS = 200
MAX_TERMS = 8
MAX_TERM_CHARS = 64


class QueryError(ValueError):
    """A query that cannot be run; the message says what to change (in English, for the
    CLI). ``key`` and ``values`` name the same text in bot.core.i18n (``query_<key>``), so a
    chat reads it in its own language."""

    def __init__(self, message: str, key: str = "invalid", **values: object) -> None:
        super().__init__(message)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Query:
    terms: tuple[str, ...]  # folded, cleaned, at least one character each
    period: DateRange | None = None


def _invisible(c: str) -> bool:
    # Control and format characters (zero-width space, RTL marks, BOM) are invisible in a
    # query; a user who pastes them means the visible text around them.
    return unicodedata.category(c) in ("Cc", "Cf") and c not in "\t\n"


def clean(text: str) -> str:
    return "".join(" " if c in "\t\n\r\u3000" else c for c in text if not _invisible(c))


_TOKEN = re.compile(r'"(?P<straight>[^"]*)"|“(?P<curly>[^”]*)”|(?P<bare>\S+)')
# Once no ” follows, a “ cannot close: without this, each “ would read to the end of the
# text looking for one (quadratic in “). An unclosed " reads to the end once: it is the last.
_TOKEN_NO_CURLY = re.compile(r'"(?P<straight>[^"]*)"|(?P<bare>\S+)')


def split_terms(text: str) -> list[tuple[str, bool]]:
    """Terms separated by spaces; ``"two words"`` is one term. (term, was_quoted)."""
    out: list[tuple[str, bool]] = []
    last_close = text.rfind("”")
    pos = 0
    while m := (_TOKEN if pos <= last_close else _TOKEN_NO_CURLY).search(text, pos):
        pos = m.end()
        groups = m.groupdict()
        quoted = groups["bare"] is None
        term = groups["bare"] if not quoted else groups["straight"] or groups.get("curly") or ""
        if term and term.strip():
            out.append((term, quoted))
    return out


def parse_query(text: str) -> Query:
    """Terms (all must appear) and an optional date filter: 2025, 2025-02, 2024-11..2025-01."""
    cleaned = clean(text).strip()
    if not cleaned:
        raise QueryError("the query is empty: give a word to look for, for example 小米", "empty")
    if len(cleaned) > MAX_QUERY_CHARS:
        raise QueryError(
            f"the query is too long ({len(cleaned)} characters, at most {MAX_QUERY_CHARS})",
            "too_long",
            n=len(cleaned),
            max=MAX_QUERY_CHARS,
        )
    terms: list[str] = []
    period: DateRange | None = None
    for term, quoted in split_terms(cleaned):
        # A date typed in full-width digits (２０２５－０２) is the same filter.
        found = None if quoted else _period_or_error(unicodedata.normalize("NFKC", term))
        if found is not None:
            if period is not None:
                raise QueryError(
                    "give at most one date filter (2025, 2025-02 or 2024-11..2025-01)", "filters"
                )
            period = found
            continue
        if len(term) > MAX_TERM_CHARS:
            raise QueryError(
                f"a term is too long ({len(term)} characters, at most {MAX_TERM_CHARS})",
                "term_too_long",
                n=len(term),
                max=MAX_TERM_CHARS,
            )
        terms.append(fold(term))
    if len(terms) > MAX_TERMS:
        raise QueryError(
            f"too many terms ({len(terms)}, at most {MAX_TERMS})",
            "too_many",
            n=len(terms),
            max=MAX_TERMS,
        )
    if not terms and period is None:
        raise QueryError("the query is empty: give a word to look for, for example 小米", "empty")
    return Query(tuple(dict.fromkeys(terms)), period)


def _period_or_error(term: str) -> DateRange | None:
    try:
        return parse_period(term)
    except ValueError as err:
        raise QueryError(
            f"bad date filter '{term[:100]}': {err}", "bad_filter", term=term[:100]
        ) from None


_HEX: dict[str, str] = {}


def _hex(folded: str) -> list[str]:
    # Indexing is dominated by this conversion; the cache makes it a dict lookup per char.
    return [_HEX.get(c) or _HEX.setdefault(c, format(ord(c), "x")) for c in folded]


def unigrams(folded: str) -> str:
    return " ".join(_hex(folded))


def _pairs(h: list[str]) -> str:
    return " ".join([a + "g" + b for a, b in itertools.pairwise(h)])


def bigrams(folded: str) -> str:
    return _pairs(_hex(folded))


def index_columns(plain: str) -> tuple[str, str]:
    """The unigram and bigram columns stored for an item's visible text."""
    h = _hex(fold(plain))
    return " ".join(h), _pairs(h)


@dataclass(frozen=True)
class Match:
    """FTS5 expressions for the unigram and the bigram table; None where no term needs it."""

    uni: str | None
    bi: str | None


def fts_match(terms: tuple[str, ...]) -> Match:
    """Expressions requiring every (folded) term as a substring. Only hex tokens, quoted."""
    uni = [f'"{unigrams(t)}"' for t in terms if len(t) == 1]
    bi = [f'"{bigrams(t)}"' for t in terms if len(t) > 1]
    return Match(" AND ".join(uni) or None, " AND ".join(bi) or None)


def matches(plain: str, terms: tuple[str, ...]) -> bool:
    """The naive definition the index must agree with."""
    folded = fold(plain)
    return all(term in folded for term in terms)


def mark_ranges(plain: str, terms: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Every occurrence of every (folded) term in the visible text, as sorted, merged ranges
    of the original text.

    Found on the original text by each term's pattern (:func:`_marker`): one C search a
    term instead of folding the text (~80 ns a character in ``str.translate``). A text that
    holds a character folding to several which a match could cover (the ``ﬁ`` of ``file``)
    is folded and mapped back instead (:func:`mark_ranges_folded`); the two agree on every
    text (``tests/test_marks.py``)."""
    marker = _marker(terms)
    patterns = marker.bmp
    if marker.gate is not None and marker.gate.search(plain):
        if marker.expanding is not None and marker.expanding.search(plain):
            return mark_ranges_folded(plain, terms)
        patterns = marker.full
    spans: list[tuple[int, int]] = []
    for pattern, size in patterns:
        found = pattern.search(plain)
        while found:
            start = found.start()
            spans.append((start, start + size))
            found = pattern.search(plain, start + 1)  # overlapping occurrences count too
    return _merged(spans)


_Patterns = tuple[tuple[re.Pattern[str], int], ...]  # (pattern, length) per term


@dataclass(frozen=True)
class _Marker:
    """A query's terms as patterns over the original text.

    ``full`` matches every character that folds to a term's character; ``bmp`` only those
    below U+10000, which is all a text without astral characters can hold, and is several
    times faster (re checks a class's astral members one by one at every position).
    ``gate`` finds what makes ``bmp`` not enough: an astral character (when it matters) or a
    character folding to several that a match could cover (``expanding``, the slow path)."""

    bmp: _Patterns
    full: _Patterns
    gate: re.Pattern[str] | None
    expanding: re.Pattern[str] | None


def _char_class(chars: str) -> str:
    return re.escape(chars) if len(chars) == 1 else "[" + "".join(map(re.escape, chars)) + "]"


def _bmp(chars: str) -> str:
    return "".join(c for c in chars if c < "\U00010000")


def _patterns(terms: list[list[str]]) -> _Patterns:
    return tuple(
        (re.compile("".join(map(_char_class, classes))), len(classes)) for classes in terms
    )


@functools.lru_cache(maxsize=256)
def _marker(terms: tuple[str, ...]) -> _Marker:
    """Each folded character of a term stands for every character that folds to exactly it
    (``a`` for ``[aAａＡ…]``, ``台`` for ``[台臺檯颱…]``), so the pattern matches where the fold of
    the text has the term, as long as no character of the match folds to several: those, if
    their fold shares a character with a term, are what the slow path is kept for."""
    full: list[list[str]] = []
    for term in dict.fromkeys(terms):
        classes = [sources(c) for c in term]
        if term and all(classes):  # a character nothing folds to: the term cannot match
            full.append(classes)
    bmp = [[_bmp(chars) for chars in classes] for classes in full]
    bmp = [classes for classes in bmp if all(classes)]
    several = expanding("".join(terms))
    gate = "".join(map(re.escape, _bmp(several)))
    if bmp != full or _bmp(several) != several:
        gate += "\U00010000-\U0010ffff"  # a range: one comparison, not one per member
    return _Marker(
        _patterns(bmp),
        _patterns(full),
        re.compile(f"[{gate}]") if gate else None,
        re.compile(_char_class(several)) if several else None,
    )


def mark_ranges_folded(plain: str, terms: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """:func:`mark_ranges` by folding the text: every term found in the folded text, then
    mapped back through the source of each folded character (a match inside an expanded
    character, the "i" of "ﬁ", marks it)."""
    folded, origin = fold_map(plain)
    spans: list[tuple[int, int]] = []
    for term in terms:
        start = folded.find(term) if term else -1
        while start >= 0:
            end = start + len(term)
            if origin is None:
                spans.append((start, end))
            else:
                spans.append((origin[start], origin[end - 1] + 1))
            start = folded.find(term, start + 1)
    return _merged(spans)


def _merged(spans: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)
