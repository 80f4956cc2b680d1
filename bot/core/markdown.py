"""The small inline Markdown the archive uses: ``[label](url)``, ``**bold**``, `` `code` ``.

Items are stored as Markdown source; readers see spans. Search works on the visible text
(the concatenation of span texts), so a link's URL never produces a false match.
"""

from __future__ import annotations

import re
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


# One alternation, tried left to right at each position; the first group that matches wins.
_INLINE = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|\*\*(?P<bold>(?:\\.|[^*\n])+?)\*\*"
    r"|\[(?P<label>(?:\\.|[^\]\n])+)\]\((?P<url>[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)\)"
    r"|\\(?P<escaped>[\\`*_\[\]()#!<>&-])"
    r"|(?P<bare>https?://[^\s<>\"'（）【】，。；！？、]+)"
)
_UNESCAPE = re.compile(r"\\([\\`*_\[\]()#!<>&-])")


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text)


def parse_inline(source: str) -> list[Span]:
    """Split Markdown source into spans; adjacent plain text is merged."""
    spans: list[Span] = []
    pos = 0

    def plain(text: str) -> None:
        if not text:
            return
        if spans and spans[-1].style is Style.PLAIN:
            spans[-1] = Span(spans[-1].text + text)
        else:
            spans.append(Span(text))

    for m in _INLINE.finditer(source):
        plain(source[pos : m.start()])
        pos = m.end()
        if m.group("code") is not None:
            spans.append(Span(m.group("code"), Style.CODE))
        elif m.group("bold") is not None:
            spans.append(Span(_unescape(m.group("bold")), Style.BOLD))
        elif m.group("label") is not None:
            spans.append(Span(_unescape(m.group("label")), Style.LINK, m.group("url")))
        elif m.group("escaped") is not None:
            plain(m.group("escaped"))
        else:
            url = m.group("bare")
            spans.append(Span(url, Style.LINK, url))
    plain(source[pos:])
    return spans


def visible_text(source: str) -> str:
    """What a reader sees of the Markdown source: labels instead of links, no markers."""
    return "".join(span.text for span in parse_inline(source))


def inline_urls(source: str) -> list[str]:
    """URLs of the links written inside the text, in order."""
    return [span.url for span in parse_inline(source) if span.style is Style.LINK]
