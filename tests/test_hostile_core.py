"""Hostile input for the pure core: pathological Markdown, giant items and issues, characters
that are line breaks only to ``str.splitlines``, numbers and dates out of range.

Time is never pinned to a wall-clock number: a pathological input is timed against a normal
input of the same size in the same test (or against itself at four times the size, where
the output itself grows with what is pathological, one ``<b>`` per match). The sizes are
small enough to keep these fast and large enough that quadratic work fails by far.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.core import model
from bot.core.content import parse_bytes, parse_text, read_archive
from bot.core.dates import DateError, DateRange, parse_date, parse_period
from bot.core.markdown import Span, Style, parse_inline, visible_text
from bot.core.model import Hit, Issue, Item, SearchPage, Severity
from bot.core.render import (
    MAX_UTF16,
    issue_messages,
    issue_plain,
    item_html,
    search_page_html,
    search_page_plain,
    utf16_len,
)
from bot.core.search import QueryError, mark_ranges, parse_query, split_terms

FEB = "docs/2025/newsflash-202502.md"
DAY = dt.date(2025, 2, 14)
HEAD = "# 2025年2月\n\n## 2025.02.14\n\n2025年02月14日 💡行业快讯\n\n"  # items start at line 7
NEWS = "小米发布新手机，详见[官网](https://mi.com/a)，**重点**在`价格`。"  # normal Markdown
PROSE = "这是一段用来测试的新闻文本，内容很普通。"
N = 8_000  # characters of a pathological input


def sized(unit: str, n: int) -> str:
    """``unit`` repeated to exactly ``n`` characters."""
    return (unit * (n // len(unit) + 1))[:n]


def per_call(*fns: Callable[[], object], rounds: int = 5) -> list[float]:
    """Seconds per call of each function: the best of ``rounds`` rounds of at least 10 ms each,
    the functions taking turns so that a busy machine slows them alike. A call slower than
    half a second is not repeated (it has failed whatever the others take)."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if best[i] > 0.5 and best[i] != float("inf"):
                continue
            calls, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < 0.01:
                fn()
                calls += 1
            best[i] = min(best[i], elapsed / calls)
    return best


def assert_like_normal(hostile: Callable[[], object], normal: Callable[[], object]) -> None:
    t_hostile, t_normal = per_call(hostile, normal)
    assert t_hostile <= 10 * t_normal, (
        f"{t_hostile * 1e3:.2f} ms, a normal input of the same size {t_normal * 1e3:.2f} ms"
    )


def assert_linear(make: Callable[[int], Callable[[], object]], n: int) -> None:
    """Four times the input takes about four times as long (quadratic work: sixteen)."""
    t_small, t_big = per_call(make(n), make(4 * n))
    assert t_big <= 8 * t_small, f"{t_small * 1e3:.2f} ms at {n}, {t_big * 1e3:.2f} ms at {4 * n}"


def one_item_issue(text: str) -> Issue:
    return Issue(DAY, "标题", (Item(1, text),))


def page_of(text: str, term: str) -> SearchPage:
    marks = mark_ranges(visible_text(text), (term,))
    return SearchPage((term,), 1, 0, 5, (Hit(DAY, 1, text, (), marks),))


# --- 1. linear time ------------------------------------------------------------------------

# (what it is, the function, a pathological argument, a normal argument of the same size)
HOSTILE: list[tuple[str, Callable[[str], object], str, str]] = [
    ("unmatched [ (markdown)", parse_inline, "[" * N, sized(NEWS, N)),
    ("nested [ ** ` (markdown)", parse_inline, sized("[**`", N), sized(NEWS, N)),
    ("backslash runs in bold", parse_inline, sized("**" + "\\" * 20 + "x*y ", N), sized(NEWS, N)),
    ("backslash runs in a label", parse_inline, sized("[" + "\\" * 20 + "x] ", N), sized(NEWS, N)),
    (
        "unmatched [ in an item (check, index)",
        lambda t: parse_text(FEB, t),
        HEAD + "1. " + "[" * N + "\n",
        HEAD + "1. " + sized(NEWS, N) + "\n",
    ),
    (
        "nested markup in an item",
        lambda t: parse_text(FEB, t),
        HEAD + "1. " + sized("[**`", N) + "\n",
        HEAD + "1. " + sized(NEWS, N) + "\n",
    ),
    (
        "a run of spaces inside an item line",
        lambda t: parse_text(FEB, t),
        HEAD + "1. a" + " " * N + "b\n",
        HEAD + "1. " + sized(NEWS, N + 2) + "\n",
    ),
    (
        "a run of spaces inside a heading",
        lambda t: parse_text(FEB, t),
        "## a" + " " * N + "b\n",
        "## " + sized(NEWS, N + 2) + "\n",
    ),
    ("unclosed “ in a query", split_terms, "“ " * (N // 2), sized("小米 汽车 ", N)),
]


@pytest.mark.parametrize(
    ("fn", "hostile", "normal"), [case[1:] for case in HOSTILE], ids=[c[0] for c in HOSTILE]
)
def test_pathological_input_costs_about_what_a_normal_one_does(
    fn: Callable[[str], object], hostile: str, normal: str
) -> None:
    assert_like_normal(lambda: fn(hostile), lambda: fn(normal))


def test_flags_cut_as_fast_as_other_text_without_a_boundary() -> None:
    # 8000 UTF-16 units each, neither with a sentence end or space to cut at; splitting a
    # run of flags used to count the run back from every cut.
    flags, plain = one_item_issue("🇨" * (N // 2)), one_item_issue("字" * N)
    assert_like_normal(lambda: issue_messages(flags), lambda: issue_messages(plain))


@pytest.mark.parametrize(
    "render", [search_page_html, search_page_plain], ids=["search_page_html", "plain"]
)
def test_highlighting_is_linear_in_the_matches(render: Callable[[SearchPage], str]) -> None:
    # Every "小米" matches: 500 and 2,000 marks in one item (4,000 used to take 1.4 s).
    def make(n: int) -> Callable[[], object]:
        page = page_of("小米 " * n, "小米")
        return lambda: render(page)

    assert_linear(make, 500)


def test_many_items_in_one_message_are_packed_in_linear_time() -> None:
    def make(n: int) -> Callable[[], object]:
        issue = Issue(DAY, "标题", tuple(Item(i, PROSE) for i in range(1, n + 1)))
        return lambda: issue_messages(issue, limit=10**9)

    # From 1,000 items on: below that the per-item cost steps up once (about 500 -> 1,000,
    # caches and the garbage collector), which alone made 500 -> 2,000 read as 8x.
    assert_linear(make, 1000)


def test_escaped_characters_are_joined_in_linear_time() -> None:
    # Each escape is plain text merged into the text before it: copying that text again
    # for every escape is quadratic.
    assert_linear(lambda n: lambda: parse_inline(("字" * 50 + "\\*") * n), 2_000)


def test_a_backslash_always_escapes_the_next_character() -> None:
    # What keeps the patterns linear: no reading of a backslash as both an escape and text.
    assert parse_inline("**a\\**") == [Span("**a**")]
    assert parse_inline("[a\\](b)") == [Span("[a](b)")]
    assert parse_inline("**a\\*b**") == [Span("a*b", Style.BOLD)]
    assert parse_inline("[a\\]b](https://e.com)") == [Span("a]b", Style.LINK, "https://e.com")]


# --- 2. one item's size ----------------------------------------------------------------------


def test_a_long_item_is_cut_with_a_warning_and_kept() -> None:
    cap = model.MAX_ITEM_CHARS
    prose = sized(PROSE, cap + 500)
    link = "[官网](https://mi.com/x)"
    text = prose[: cap - 5] + link + prose[cap - 5 :]  # the cut falls inside the link
    body = f"1. {text}\n   https://e.com/1\n2. 短的一条。\n"
    result = parse_text(FEB, HEAD + body)
    assert [str(p) for p in result.problems] == [
        f"{FEB}:7: warning: item 1 is {len(text)} characters; truncated to {cap}"
    ]
    (issue,) = result.issues
    first, second = issue.items
    assert first.text == prose[: cap - 5]  # the link is left out whole, not cut in two
    assert first.urls == ("https://mi.com/x", "https://e.com/1")  # and still reaches readers
    assert second.text == "短的一条。"
    assert utf16_len(visible_text(first.text)) + len("2025-02-14 #1\n") <= MAX_UTF16
    assert 'href="https://mi.com/x"' in item_html(DAY, first)


def test_an_item_of_exactly_the_cap_is_not_reported() -> None:
    text = sized(PROSE, model.MAX_ITEM_CHARS)
    result = parse_text(FEB, HEAD + f"1. {text}\n")
    assert result.problems == []
    assert result.issues[0].items[0].text == text


# --- 3. items per issue ----------------------------------------------------------------------


def test_items_past_the_per_issue_cap_are_reported_and_check_counts_what_is_kept(
    tmp_path: Path,
) -> None:
    cap = model.MAX_ITEMS_PER_ISSUE
    assert cap <= 10_000  # the index's positions per issue (POSITIONS in bot/db)
    items = "".join(f"{k % 9999 + 1}. 第{k}条\n   https://e.com/{k}\n" for k in range(cap + 2))
    path = tmp_path / "2025" / "newsflash-202502.md"
    path.parent.mkdir()
    path.write_text(HEAD + items, encoding="utf-8")
    archive = read_archive(tmp_path)
    assert archive.item_count == cap  # what check counts is what the index stores
    (problem,) = archive.problems
    assert (problem.line, problem.severity) == (7 + 2 * cap, Severity.ERROR)
    assert problem.message == (
        f"issue 2025.02.14 has {cap + 2} items, more than the {cap} one issue can hold; "
        "the 2 from this line on are left out (split the issue)"
    )
    (issue,) = archive.issues.values()
    # The URL lines of the items left out do not end up on the last item kept.
    assert issue.items[-1].urls == (f"https://e.com/{cap - 1}",)


# --- 4. line breaks --------------------------------------------------------------------------

LINE_BREAKS_ONLY_TO_SPLITLINES = [
    "\u2028",
    "\u2029",
    "\x0c",
    "\x0b",
    "\x85",
    "\x1c",
    "\x1d",
    "\x1e",
]


@pytest.mark.parametrize("char", LINE_BREAKS_ONLY_TO_SPLITLINES, ids=lambda c: f"U+{ord(c):04X}")
def test_only_lf_crlf_and_cr_end_a_line(char: str) -> None:
    body = f"1. 前半{char}后半\n   https://e.com/1\n2. 第二条\nstray text\n"
    result = parse_text(FEB, HEAD + body)
    (issue,) = result.issues
    assert issue.items[0].text == f"前半{char}后半"
    assert issue.items[0].urls == ("https://e.com/1",)
    assert [(p.line, p.severity) for p in result.problems] == [(10, Severity.WARNING)]


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_lf_crlf_and_cr_still_end_lines(eol: str) -> None:
    text = (HEAD + "1. 第一条\n   https://e.com/1\n2. 第二条\nstray text\n").replace("\n", eol)
    result = parse_bytes(FEB, text.encode())
    assert [i.text for i in result.issues[0].items] == ["第一条", "第二条"]
    assert [p.line for p in result.problems] == [10]


def test_invalid_utf8_is_reported_on_its_line_whatever_ends_lines() -> None:
    for eol in (b"\n", b"\r\n", b"\r"):
        data = eol.join([b"## 2025.02.14", b"t", b"1. ok", b"2. bad \xff"])
        (problem,) = parse_bytes(FEB, data).problems
        assert problem.line == 4


# --- 5. out of range, malformed, huge --------------------------------------------------------

RNG = random.Random(5)
HOSTILE_FILES: dict[str, bytes] = {
    "random bytes": RNG.randbytes(20_000),
    "random text": "".join(map(chr, RNG.choices(range(0x30000), k=5_000))).encode(
        "utf-8", "surrogatepass"
    ),
    "NUL": b"## 2025.02.14\n\x00t\x00\n1. a\x00b\n   https://e.com/\x00\n\x00\n",
    "a 10 KB URL": f"## 2025.02.14\nt\n1. a\n   https://e.com/{'a' * 10_000}\n".encode(),
    "a 10 KB non-http URL": f"## 2025.02.14\nt\n1. a\n   ftp:{'a' * 10_000}\n".encode(),
    "huge heading numbers": b"## 99999.99.99\n1. a\n## 2025.99.99\n1. b\n## 0000.01.01\n1. c\n",
    "year 10000": "# 10000年1月\n## 10000.01.01\nt\n1. a\n## 9999.12.31\nt\n1. b\n".encode(),
    "huge item numbers": b"## 2025.02.14\nt\n99999. a\n9999. b\n0. c\n0000. d\n",
    "digits of other scripts": "## ٢٠٢٥.٠٢.١٤\nt\n١. a\n".encode(),
    "a 1 MB heading": b"## " + b"9" * 1_000_000 + b"\n1. a\n",
}


@pytest.mark.parametrize("data", HOSTILE_FILES.values(), ids=HOSTILE_FILES.keys())
def test_hostile_files_give_problems_not_exceptions(data: bytes) -> None:
    result = parse_bytes("docs/9999/newsflash-999912.md", data)
    lines = data.count(b"\n") + data.count(b"\r") + 1
    assert all(1 <= p.line <= lines and len(str(p)) < 500 for p in result.problems)
    for issue in result.issues:
        assert 1 <= issue.date.year <= 9999
        assert len(issue.items) <= model.MAX_ITEMS_PER_ISSUE
        assert all(len(item.text) <= model.MAX_ITEM_CHARS for item in issue.items)
        issue_messages(issue)
        issue_plain(issue)


def test_the_last_days_a_date_can_have_are_read() -> None:
    assert parse_period("9999") == DateRange(dt.date(9999, 1, 1), dt.date(9999, 12, 31))
    assert parse_period("9999-12") == DateRange(dt.date(9999, 12, 1), dt.date(9999, 12, 31))
    assert parse_period("2024-02") == DateRange(dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert parse_query("小米 9999-12").period == parse_period("9999-12")
    assert parse_date("9999-12-31", dt.date.max) == dt.date.max
    assert parse_date("12月31日", dt.date.max) == dt.date.max


@pytest.mark.parametrize(
    ("text", "today"),
    [
        ("yesterday", dt.date.min),
        ("昨天", dt.date.min),
        ("2月29日", dt.date(1, 1, 1)),
        ("10000-01-01", dt.date.max),
        ("0000-01-01", DAY),
        ("99999.99.99", DAY),
        ("9" * 5_000, DAY),
        ("\x00", DAY),
    ],
)
def test_dates_past_either_end_are_date_errors(text: str, today: dt.date) -> None:
    with pytest.raises(DateError):
        parse_date(text, today)


@pytest.mark.parametrize("text", ["0000", "0000-01", "9999-13", "2025-02-30", "2026..2025"])
def test_impossible_periods_are_value_errors_and_bad_filters(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text)
    with pytest.raises(QueryError):
        parse_query(f"小米 {text}")
