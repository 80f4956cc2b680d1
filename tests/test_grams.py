"""The C-speed index columns are exactly those of bot.core.search.index_columns."""

from __future__ import annotations

import random

import pytest

from bot.core import grams, search

SAMPLES = [
    "",
    "a",
    "ab",
    "小米",
    "英伟达发布 RTX 5090，售价 1999 美元",
    "İstanbul ẞ ǅ ﬃ Σ",  # lower() changes length or case in several ways
    "emoji 🚀🚀 and \u200b zero width",
    "  spaces\tand\nnewlines  ",
    "Qwen2.5-Max AT&T RISC-V",
    # folding: Traditional, full-width, Kangxi radicals, characters NFKC expands
    "臺積電 機器人 ＡＩ ５Ｇ ⼈⼯智能",
    "ﬁ",
    "㈱",
    "ﬁle ㈱ ① Ⅻ ｶﾀｶﾅ",
    "x㈱",
    "㈱x",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_same_columns(text: str) -> None:
    assert grams.index_columns(text) == search.index_columns(text)


def test_same_columns_on_random_text() -> None:
    rnd = random.Random(12)
    alphabet = "abcXYZ019 .-&小米芯片车人工智能İẞΣς🚀\u200b\u3000臺積電ＡＩ５⼈ﬁ㈱"
    for _ in range(2000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 40)))
        text += chr(rnd.randrange(0x20, 0x2FFFF))
        assert grams.index_columns(text) == search.index_columns(text), repr(text)


def test_many_columns_at_once_are_the_same() -> None:
    # One batch mixing empty, one-character, expanding (ﬁ, ㈱) and astral texts: each item's
    # columns are cut out of the batch's, and the rare ones take the per-item path.
    rnd = random.Random(34)
    alphabet = "abcXYZ019 .-&小米芯片车人工智能İẞΣς🚀\u200b\u3000臺積電ＡＩ５⼈ﬁ㈱\U0010fffd"
    texts = SAMPLES + [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 30))) for _ in range(500)
    ]
    assert grams.index_columns_many(texts) == [search.index_columns(t) for t in texts]
    for start in range(0, len(texts), 97):  # batches that start and end anywhere
        batch = texts[start : start + 97]
        assert grams.index_columns_many(batch) == [search.index_columns(t) for t in batch]
    assert grams.index_columns_many([]) == []
    assert grams.index_columns_many(["", ""]) == [("", ""), ("", "")]
