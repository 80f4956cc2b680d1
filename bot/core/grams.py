"""The index columns of :func:`bot.core.search.index_columns`, computed at C speed.

A full build turns ~10 million characters into unigram and bigram tokens; one
``str.translate`` per column does in C what a Python loop per character did (about half
the time). The output is the same, character for character: ``tests/test_grams.py``
checks it against ``index_columns`` on varied text. (``bot.core.search`` can call this
instead once its owner agrees; until then the sync calls it directly.) The tables fold as
they translate (:mod:`bot.core.fold`), so folding costs no pass of its own.
"""

from __future__ import annotations

from bot.core.fold import FOLD


class _Unigram(dict[int, str]):
    """code point -> the hex tokens of its fold, each with a space (filled in as characters
    are met). Folding happens here, in the same pass: a character that folds to several
    (``ﬁ``) yields several tokens."""

    def __missing__(self, point: int) -> str:
        token = self[point] = "".join(format(ord(c), "x") + " " for c in FOLD[point])
        return token


class _Bigram(dict[int, str]):
    """code point c -> ``g<c> <c>`` for each character of its fold: consecutive folded
    characters a, b, c then translate to ``g<a> <a>g<b> <b>g<c> <c>``, which is the bigram
    list ``<a>g<b> <b>g<c>`` once the first ``g<a> `` and the last `` <c>`` are cut off."""

    def __missing__(self, point: int) -> str:
        token = self[point] = "".join(
            "g" + (h := format(ord(c), "x")) + " " + h for c in FOLD[point]
        )
        return token


_UNI = _Unigram()
_BI = _Bigram()


def index_columns(plain: str) -> tuple[str, str]:
    """The unigram and bigram columns stored for an item's visible text."""
    if not plain:
        return "", ""
    uni = plain.translate(_UNI)[:-1]
    first, last = FOLD[ord(plain[0])], FOLD[ord(plain[-1])]
    if len(plain) < 2 and len(first) < 2:
        return uni, ""  # one folded character: no bigram
    bi = plain.translate(_BI)
    head = len(format(ord(first[0]), "x")) + 2  # "g" + hex + " "
    tail = len(format(ord(last[-1]), "x")) + 1  # " " + hex
    return uni, bi[head:-tail]


# -- many items at once --------------------------------------------------------------------
# A full build turns ~10 million characters into ~150 MB of tokens. ``str.translate`` above
# costs ~100 ns a character (a dict lookup each); here a batch of items is one array of code
# points, each character's two tokens are fixed-width records looked up by one gather, and
# the padding is deleted in one C pass (``bytes.translate``): ~5x less CPU, the same text.

_UNKNOWN = 0xFFFFFFFF  # code point not met yet
_SEVERAL = 0xFFFFFFFE  # folds to several characters: such an item takes the path above
_WIDTH = 6  # hex digits of the largest code point


class _Records:
    """Per folded character met so far: its unigram token (8 bytes: hex left-padded with NUL,
    a space, NUL) and its bigram record (16 bytes: ``g``, hex, a space, hex, NUL padded),
    and its number of hex digits; ``ids`` maps a code point to its fold's record."""

    def __init__(self) -> None:
        import numpy as np  # here: only a build needs it, not every process importing search

        self.np = np
        self.ids = np.full(0x110000, _UNKNOWN, dtype=np.uint32)
        # Record 0 is the placeholder of characters that fold to several (length 0).
        self._uni = [b"\0" * 8]
        self._bi = [b"\0" * 16]
        self._digits = [-1]
        self._by_fold: dict[str, int] = {}
        self._freeze()

    def _freeze(self) -> None:
        np = self.np
        self.uni = np.frombuffer(b"".join(self._uni), np.uint64)
        self.bi = np.frombuffer(b"".join(self._bi), np.dtype("V16"))
        self.digits = np.array(self._digits, np.int64)

    def learn(self, points: list[int]) -> None:
        for point in points:
            folded = FOLD[point]
            if len(folded) != 1:
                self.ids[point] = _SEVERAL
                continue
            record = self._by_fold.get(folded)
            if record is None:
                h = format(ord(folded), "x").encode()
                pad = h.rjust(_WIDTH, b"\0")
                self._uni.append(pad + b" \0")
                self._bi.append(b"g" + pad + b" " + pad + b"\0\0")
                self._digits.append(len(h))
                record = self._by_fold[folded] = len(self._uni) - 1
            self.ids[point] = record
        self._freeze()


_records: _Records | None = None


def index_columns_many(plains: list[str]) -> list[tuple[str, str]]:
    """``[index_columns(p) for p in plains]``, computed for the whole batch at once."""
    global _records
    if _records is None:
        _records = _Records()
    rec, np = _records, _records.np
    lengths = np.fromiter(map(len, plains), np.int64, len(plains))
    codes = np.frombuffer("".join(plains).encode("utf-32-le"), dtype=np.uint32)
    if not len(codes):
        return [("", "") for _ in plains]
    ids = rec.ids[codes]
    if (new := ids == _UNKNOWN).any():
        rec.learn(np.unique(codes[new]).tolist())
        ids = rec.ids[codes]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    several: set[int] = set()
    if (expands := ids == _SEVERAL).any():
        found = np.searchsorted(ends, np.flatnonzero(expands), side="right")
        several = set(found.tolist())
        ids = np.where(expands, 0, ids)
    digits = rec.digits[ids]
    uni = rec.uni[ids].tobytes().translate(None, b"\0").decode("ascii")
    bi = rec.bi[ids].tobytes().translate(None, b"\0").decode("ascii")
    # Character i's unigram token starts at offset[i] in ``uni`` (each is digits + 1 long);
    # its bigram record (2 * (digits + 1) long) at 2 * offset[i] in ``bi``.
    offset = np.zeros(len(ids) + 1, np.int64)
    np.cumsum(digits + 1, out=offset[1:])
    u0, u1 = offset[starts], offset[ends]
    short = lengths < 2  # no bigram (and maybe no character): the path above
    first_digits = np.where(short, 0, digits[np.minimum(starts, len(ids) - 1)])
    last_digits = np.where(short, 0, digits[np.maximum(ends - 1, 0)])
    # Cut ``g<first> `` off the first record and `` <last>`` off the last one.
    b0, b1 = 2 * u0 + first_digits + 2, 2 * u1 - last_digits - 1
    out: list[tuple[str, str]] = []
    bounds = zip(u0.tolist(), u1.tolist(), b0.tolist(), b1.tolist(), short.tolist(), strict=True)
    for k, (ua, ub, ba, bb, alone) in enumerate(bounds):
        if alone or k in several:
            out.append(index_columns(plains[k]))
        else:
            out.append((uni[ua : ub - 1], bi[ba:bb]))
    return out
