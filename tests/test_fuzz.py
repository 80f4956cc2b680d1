"""Fuzzing the readers of untrusted text: archive files, inline Markdown, queries, dates.

Each may only fail in its documented way (problems in a ParseResult, QueryError, DateError,
ValueError from ``parse_period``), and none may take more than linear time: a fragment
repeated to a few thousand characters costs about what normal text of that size does.

Derandomized with a few examples each, so CI is fast and repeatable; explore more with
``BRIEFBOT_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py`` (then randomized, and Hypothesis
prints how to reproduce a failure).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import model
from bot.core.content import parse_bytes, parse_text
from bot.core.dates import (
    DateError,
    DateRange,
    month_day,
    most_recent,
    parse_date,
    parse_period,
)
from bot.core.markdown import inline_urls, parse_inline, visible_text
from bot.core.model import Issue
from bot.core.render import issue_messages, item_html
from bot.core.search import MAX_TERMS, Query, QueryError, parse_query, split_terms

from .test_hostile_core import NEWS, per_call, sized

_ASKED = int(os.environ.get("BRIEFBOT_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_ASKED or 25,
    derandomize=not _ASKED,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEB = "docs/2025/newsflash-202502.md"
PROBLEM = re.compile(r"^docs/2025/newsflash-202502\.md:\d+: (error|warning): .+$", re.DOTALL)

# Pieces that mean something to one reader or another, and characters that should not.
MARKUP = [
    *"[]()*`\\_#!<>&\"'“”（）【】，。", "**", "](", "https://", "http://", "www.", "\\*", "\\]",
    "\u2028", "\x85", "\x0c", "\x00", "\u200d", "🇨", "👩‍💻", "\ufeff", "\ud800", " ", "\t", "　",
    "2025", "9999", "99999", "..", "-", ".", "/", "年", "月", "日", "昨天", "latest",
]  # fmt: skip
fragment = st.lists(
    st.one_of(st.sampled_from(MARKUP), st.text(max_size=4), st.characters()), max_size=30
).map("".join)

LINE = st.one_of(
    st.sampled_from(["## 2025.02.14", "## 2025.02.30", "## 99999.99.99", "## 0000.01.01",
                     "## 9999.12.31", "# 2025年2月", "标题", "", "   "]),
    st.builds("## {}".format, fragment),
    st.builds("{}. {}".format, st.integers(0, 99999), fragment),
    st.builds("   {}".format, fragment),
    st.builds("   https://e.com/{}".format, st.text(max_size=50)),
    st.builds("   https://e.com/{}".format, st.just("a" * 10_000)),
    fragment,
)  # fmt: skip
EOL = st.sampled_from(["\n", "\r\n", "\r", "\u2028", "\x85", "\x0c", "\x0b"])
archive_text = st.lists(st.tuples(LINE, EOL), max_size=40).map(
    lambda lines: "".join(a + b for a, b in lines)
)
DAY = dt.date(2025, 2, 14)
dates = st.dates(min_value=dt.date.min, max_value=dt.date.max)


def lines_of(text: str) -> int:
    return len(re.split(r"\r\n|\r|\n", text))


def check_result(text: str | None, result: model.ParseResult) -> None:
    for problem in result.problems:
        assert PROBLEM.match(str(problem)), str(problem)
        if text is not None:
            assert 1 <= problem.line <= lines_of(text)
    for issue in result.issues:
        assert issue.items, issue
        assert len(issue.items) <= model.MAX_ITEMS_PER_ISSUE
        for item in issue.items:
            assert len(item.text) <= model.MAX_ITEM_CHARS


@FUZZ
@given(archive_text)
def test_archive_text_gives_problems_not_exceptions(text: str) -> None:
    result = parse_text(FEB, text)
    check_result(text, result)
    for issue in result.issues:
        for limit in (100, 4096):
            assert all(issue_messages(issue, limit=limit))
        item_html(issue.date, issue.items[0])


@FUZZ
@given(
    st.one_of(st.binary(max_size=2_000), archive_text.map(lambda t: t.encode("utf-8", "replace")))
)
def test_archive_bytes_give_problems_not_exceptions(data: bytes) -> None:
    check_result(None, parse_bytes(FEB, data))


@FUZZ
@given(fragment)
def test_inline_markdown_reads_anything(source: str) -> None:
    spans = parse_inline(source)
    assert all(span.text for span in spans)
    assert visible_text(source) == "".join(span.text for span in spans)
    assert len(visible_text(source)) <= len(source)
    assert all(url in source for url in inline_urls(source))


@FUZZ
@given(st.one_of(fragment, st.text(max_size=300)))
def test_queries_fail_only_with_query_error(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as err:
        assert str(err)
        return
    assert isinstance(query, Query)
    assert query.terms or query.period
    assert len(query.terms) <= MAX_TERMS and all(query.terms)


@FUZZ
@given(st.one_of(fragment, st.text(max_size=40)), dates, st.lists(dates, max_size=5))
def test_dates_fail_only_with_date_error(text: str, today: dt.date, known: list[dt.date]) -> None:
    try:
        when = parse_date(text, today, known)
    except DateError as err:
        assert err.text == text
    else:
        assert isinstance(when, (dt.date, str))
    md = month_day(text)
    assert md is None or all(isinstance(n, int) for n in md)
    try:
        period = parse_period(text)
    except ValueError as err:
        assert str(err)
    else:
        assert period is None or (isinstance(period, DateRange) and period.start <= period.end)


@FUZZ
@given(st.integers(-5, 40), st.integers(-5, 40), dates)
def test_most_recent_fails_only_with_value_error(month: int, day: int, today: dt.date) -> None:
    try:
        found = most_recent(month, day, today)
    except ValueError:
        return
    assert found <= today and (found.month, found.day) == (month, day)


# --- linear time: a fragment repeated costs about what normal text of the same size does ------

SIZE = 4_000
READERS: dict[str, Callable[[str], object]] = {
    "markdown": parse_inline,
    "archive": lambda t: parse_text(FEB, f"## 2025.02.14\n标题\n1. {t}\n2. {t}\n"),
    "terms": split_terms,
    "render": lambda t: issue_messages(Issue(DAY, "标题", (model.Item(1, t),))),
}
NORMAL = sized(NEWS, SIZE)


@settings(FUZZ, max_examples=max(_ASKED // 20, 8))
@given(fragment.filter(bool), st.sampled_from(sorted(READERS)))
def test_repeated_fragments_take_linear_time(piece: str, name: str) -> None:
    read, text = READERS[name], sized(piece, SIZE)
    took, normal = per_call(lambda: read(text), lambda: read(NORMAL), rounds=3)
    assert took <= 25 * normal, (name, piece, took, normal)
