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

import itertools
import re
import unicodedata
from dataclasses import dataclass

from bot.core.dates import DateRange, parse_period
from bot.core.fold import fold as fold  # re-exported: callers fold as search does
from bot.core.fold import fold_map

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
    of the original text: found in the folded text, then mapped back through the source of
    each folded character (a match inside an expanded character, the "i" of "ﬁ", marks it)."""
    folded, sources = fold_map(plain)
    spans: list[tuple[int, int]] = []
    for term in terms:
        start = folded.find(term)
        while start >= 0:
            end = start + len(term)
            if sources is None:
                spans.append((start, end))
            else:
                spans.append((sources[start], sources[end - 1] + 1))
            start = folded.find(term, start + 1)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)
