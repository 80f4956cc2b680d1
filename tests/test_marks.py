"""Search marks found on the original text (bot.core.search.mark_ranges) land exactly where
folding the whole text and mapping back put them (the implementation before issue 11/12,
kept verbatim below as the oracle), on every kind of text: ASCII, Simplified, Traditional,
full-width, Kangxi radicals, astral letters and emoji, and the characters that fold to
several (ﬁ, ㈱, …) that only the slow path handles."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bot.core.search as search
from bot.core.fold import T2S, fold, fold_map
from bot.core.search import mark_ranges, mark_ranges_folded, parse_query


def old_mark_ranges(plain: str, terms: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """``mark_ranges`` as it was (commit f2e9e8a): fold, find, map back, merge."""
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


TRADITIONAL = "".join(sorted(T2S)[:: len(T2S) // 40])  # 40-odd, spread over the table
PIECES = [
    *"aAbiIfFlLsStT0125.-,:()&",  # ASCII, with what the expansions fold to
    *"小米芯片英伟达台积电机器人汽车株式会社的",  # Simplified
    *"臺積電機器人英偉達車汽",  # Traditional
    *TRADITIONAL,
    *"ＡＩａｉ５Ｇ（）：，．－",  # full-width
    *"⼈⼯⾞⻑",  # Kangxi radicals and a CJK radical supplement form
    *"ﬁﬂﬃ㈱㍿…‥½™Ⅱⅻ①㎃",  # fold to several characters
    *"𝐚𝐀𝐢𝑰🄰😀👩\u200d💻",  # astral letters, emoji
    "İ",  # lower() would be two characters: folds to itself
    " ",
    "\u3000",
]
text = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@st.composite
def text_and_terms(draw: st.DrawFn) -> tuple[str, tuple[str, ...]]:
    """A text and one to three terms: mostly pieces of its fold (so they match, across
    expansions too), sometimes anything folded."""
    plain = draw(text)
    folded = fold(plain)
    terms = []
    for _ in range(draw(st.integers(1, 3))):
        if folded and draw(st.booleans()):
            a = draw(st.integers(0, len(folded) - 1))
            b = draw(st.integers(a + 1, min(len(folded), a + 6)))
            terms.append(folded[a:b])
        else:
            terms.append(fold(draw(text.filter(bool))))
    return plain, tuple(terms)


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text_and_terms())
def test_marks_equal_the_old_implementation(case: tuple[str, tuple[str, ...]]) -> None:
    plain, terms = case
    assert mark_ranges(plain, terms) == old_mark_ranges(plain, terms)
    assert mark_ranges_folded(plain, terms) == old_mark_ranges(plain, terms)


@pytest.fixture
def no_folding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail if a text is folded to mark it: the case must take the fast path."""

    def refuse(plain: str, terms: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        raise AssertionError(f"folded {plain!r} to mark it")

    monkeypatch.setattr(search, "mark_ranges_folded", refuse)


@pytest.mark.parametrize(
    ("plain", "query", "marked"),
    [
        ("小米，发布新一代芯片（SoC）：DeepSeek 同步更新。", "小米 芯片", ["小米", "芯片"]),
        ("臺積電與台积电、檯面", "台积电", ["臺積電", "台积电"]),
        ("ＡＩ 与 AI 与 ai、𝐀𝐈", "ai", ["ＡＩ", "AI", "ai", "𝐀𝐈"]),
        ("⼈⼯智能和人工智能", "人工智能", ["⼈⼯智能", "人工智能"]),
        ("机器人…… 機器人", "機器人", ["机器人", "機器人"]),  # … folds to ... : not in the term
        ("😀 RISC-V 👩\u200d💻 ＲＩＳＣ－Ｖ", "risc-v", ["RISC-V", "ＲＩＳＣ－Ｖ"]),
        ("aaaa", "aa", ["aaaa"]),  # overlapping occurrences, merged
        ("ﬁle 小米", "小米", ["小米"]),  # ﬁ's fold has no character of 小米
    ],
)
def test_fast_path_marks_the_original_text(
    no_folding: None, plain: str, query: str, marked: list[str]
) -> None:
    terms = parse_query(query).terms
    assert [plain[a:b] for a, b in mark_ranges(plain, terms)] == marked
    assert mark_ranges(plain, terms) == old_mark_ranges(plain, terms)


@pytest.mark.parametrize(
    ("plain", "query", "marked"),
    [
        ("用了 ﬁle 和 file", "file", ["ﬁle", "file"]),
        ("ﬁ", "i", ["ﬁ"]),  # inside an expanded character: all of it
        ("㈱ 与 (株)", "株", ["㈱", "株"]),
        ("等等… 完", "..", ["…"]),
        ("Ⅱ 代", "ii", ["Ⅱ"]),
    ],
)
def test_slow_path_where_a_match_covers_an_expansion(
    plain: str, query: str, marked: list[str]
) -> None:
    terms = parse_query(query).terms
    assert [plain[a:b] for a, b in mark_ranges(plain, terms)] == marked
    assert mark_ranges(plain, terms) == old_mark_ranges(plain, terms)


def test_a_term_nothing_folds_to_marks_nothing(no_folding: None) -> None:
    # "A" is not a folded character: no folded text contains it, so the old code found none.
    assert mark_ranges("A a", ("A",)) == old_mark_ranges("A a", ("A",)) == ()
    assert mark_ranges("", ("a",)) == ()
