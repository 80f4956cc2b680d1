"""The small inline Markdown the archive uses: ``[label](url)``, ``**bold**``, `` `code` ``.

Items are stored as Markdown source; readers see spans. Search works on the visible text
(the concatenation of span texts), so a link's URL never produces a false match.

Reading is linear in the source, whatever it holds: each construct is matched by its own
pattern, none of which can backtrack over what it has read (a backslash always escapes the
character after it, so ``**a\\**`` is not bold), and a ``[`` whose link cannot close is
remembered so that the ``[`` characters after it are not tried again (``[[[[`` ... would
otherwise be read once per bracket). Plain text is collected in pieces and joined once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum


class Style(StrEnum):
    PLAIN = "plain"
    BOLD = "bold"
    CODE = "code"
    LINK = "link"


@dataclass(frozen=True)
class Span:
    text: str
    style: Style = Style.PLAIN
    url: str = ""


# Where a construct may start; which one is told by the first character (they all differ).
# Every branch starts with a literal, so the regex engine skips ahead by a character set.
_START = re.compile(r"`|\[|\\|\*\*|https?://")
_CODE = re.compile(r"`([^`\n]+)`")
# Lazy, but every step has one way to go (the group is atomic), so a failure costs the
# length read, not a number of ways to read it that doubles with each backslash.
_BOLD = re.compile(r"\*\*((?>\\.|[^*\n])+?)\*\*")
# Always matches: the label read as far as it goes; what stops it is checked by hand.
_LABEL = re.compile(r"\[((?>\\.|[^\]\n])*+)")
_URL = re.compile(r"\(([^()\s]++(?:\([^()\s]*+\)[^()\s]*+)*+)\)")
_ESCAPED = re.compile(r"\\([\\`*_\[\]()#!<>&-])")
_BARE = re.compile(r"https?://[^\s<>\"'（）【】，。；！？、]+")
_UNESCAPE = _ESCAPED


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def _tokens(source: str) -> Iterator[tuple[int, int, Span]]:
    """Every construct as ``(start, end, span)`` in source order; an escaped character is a
    plain span. What lies between them is plain text."""
    scan = 0
    no_link_before = 0  # a '[' before this index is known not to start a link
    while (m := _START.search(source, scan)) is not None:
        at = m.start()
        scan = at + 1
        c = source[at]
        span: Span | None = None
        end = at
        if c == "`":
            if code := _CODE.match(source, at):
                span, end = Span(code[1], Style.CODE), code.end()
        elif c == "*":
            if bold := _BOLD.match(source, at):
                span, end = Span(_unescape(bold[1]), Style.BOLD), bold.end()
        elif c == "[":
            if at >= no_link_before:
                label = _LABEL.match(source, at)
                assert label is not None  # it matches the empty label
                close = label.end()
                url = None
                if label[1] and source.startswith("](", close):
                    url = _URL.match(source, close + 1)
                if url:
                    span, end = Span(_unescape(label[1]), Style.LINK, url[1]), url.end()
                else:
                    # Every '[' up to ``close`` reads its label to the same place, so it
                    # fails the same way.
                    no_link_before = close
        elif c == "\\":
            if escaped := _ESCAPED.match(source, at):
                span, end = Span(escaped[1]), escaped.end()
        elif bare := _BARE.match(source, at):
            span, end = Span(bare[0], Style.LINK, bare[0]), bare.end()
        if span is not None:
            yield at, end, span
            scan = end


def parse_inline(source: str) -> list[Span]:
    """Split Markdown source into spans; adjacent plain text is merged."""
    spans: list[Span] = []
    plain: list[str] = []  # plain text not yet added to spans
    pos = 0
    for start, end, span in _tokens(source):
        plain.append(source[pos:start])
        pos = end
        if span.style is Style.PLAIN:
            plain.append(span.text)
            continue
        if text := "".join(plain):
            spans.append(Span(text))
        plain.clear()
        spans.append(span)
    plain.append(source[pos:])
    if text := "".join(plain):
        spans.append(Span(text))
    return spans


def visible_text(source: str) -> str:
    """What a reader sees of the Markdown source: labels instead of links, no markers."""
    if _START.search(source) is None:
        return source  # no construct can start: all of it is plain (most items; one C scan)
    return "".join(span.text for span in parse_inline(source))


def inline_urls(source: str) -> list[str]:
    """URLs of the links written inside the text, in order."""
    if _START.search(source) is None:
        return []
    return [span.url for span in parse_inline(source) if span.style is Style.LINK]


def safe_cut(source: str, limit: int) -> int:
    """Where to cut ``source`` to at most ``limit`` characters without breaking a link, bold
    text, code or an escape: ``limit`` itself, or the start of the construct it would split
    (unless that construct starts the text, when it is cut through)."""
    if len(source) <= limit:
        return len(source)
    for start, end, _ in _tokens(source):
        if start >= limit:
            break
        if end > limit:
            return start if start > 0 else limit
    return limit
