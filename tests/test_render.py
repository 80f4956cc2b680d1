"""Rendering: escaping, spans, splitting long issues, search pages that fit one message."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from bot.core.markdown import visible_text
from bot.core.model import Hit, Issue, Item, SearchPage
from bot.core.render import (
    MAX_UTF16,
    escape,
    escape_attr,
    issue_messages,
    issue_plain,
    item_html,
    search_page_html,
    search_page_plain,
    utf16_len,
)

DAY = dt.date(2025, 2, 14)
TITLE = "2025年02月14日 💡行业快讯"
ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"'}


@dataclass
class Rendered:
    """What a reader gets from one HTML message."""

    text: str
    bold: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, label)
    code: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    """A strict reader of the Telegram HTML subset this bot emits; fails on anything else."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self.stack: list[tuple[str, int, str]] = []  # tag, where its text starts, href
        self.result = Rendered("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in {"b", "i", "code", "a"}, tag
        assert not any(t == "code" for t, _, _ in self.stack), "nothing nests in code"
        assert attrs == [] or (tag == "a" and len(attrs) == 1 and attrs[0][0] == "href"), attrs
        href = attrs[0][1] or "" if attrs else ""
        assert tag != "a" or href, "a needs an href"
        self.stack.append((tag, len("".join(self.out)), href))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1][0] == tag, f"unbalanced </{tag}>"
        _, start, href = self.stack.pop()
        inner = "".join(self.out)[start:]
        if tag == "b":
            self.result.bold.append(inner)
        elif tag == "code":
            self.result.code.append(inner)
        elif tag == "a":
            self.result.links.append((href, inner))

    def handle_data(self, data: str) -> None:
        assert "<" not in data and ">" not in data and "&" not in data, data
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        assert name in ENTITIES, name
        self.out.append(ENTITIES[name])

    def handle_charref(self, name: str) -> None:
        raise AssertionError(f"unexpected &#{name};")


def read(html: str) -> Rendered:
    """Parse a rendered message as Telegram would and return what the reader sees."""
    assert not re.search(r"&(?!(?:amp|lt|gt|quot);)", html), "bare & in HTML"
    reader = _Reader()
    reader.feed(html)
    reader.close()
    assert not reader.stack, "unclosed tags"
    reader.result.text = "".join(reader.out)
    return reader.result


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def issue(*texts: str, urls: tuple[str, ...] = ()) -> Issue:
    items = tuple(Item(n, text, urls) for n, text in enumerate(texts, 1))
    return Issue(DAY, TITLE, items)


def check_parts(parts: list[str], limit: int) -> list[Rendered]:
    seen = [read(part) for part in parts]
    for part in seen:
        assert 0 < utf16_len(part.text) <= limit
        part.text.encode("utf-16-le")  # raises on a lone surrogate (a split pair)
    return seen


# --- escaping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<script>", "&lt;script&gt;"),
        ("AT&T", "AT&amp;T"),
        ("a < b > c", "a &lt; b &gt; c"),
        ("&amp;", "&amp;amp;"),
        ("😀 \u200fשלום", "😀 \u200fשלום"),
        ('say "hi"', 'say "hi"'),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped


def test_escape_attr_quotes() -> None:
    assert escape_attr('a&b"c<d>') == "a&amp;b&quot;c&lt;d&gt;"


@pytest.mark.parametrize(
    ("a", "n"), [("", 0), ("abc", 3), ("小米", 2), ("😀", 2), ("a😀b", 4), ("\u200f", 1)]
)
def test_utf16_len(a: str, n: int) -> None:
    assert utf16_len(a) == n


@pytest.mark.parametrize(
    "content", ["<script>alert(1)</script>", "AT&T", "a < b > c", "&amp;", "😀🚀", "\u200fשלום"]
)
def test_content_reaches_reader_literally(content: str) -> None:
    (html,) = issue_messages(issue(f"前文 {content} 后文"))
    assert f"前文 {content} 后文" in read(html).text
    assert f"前文 {content} 后文" in issue_plain(issue(f"前文 {content} 后文"))


def test_header_is_bold_date_and_title() -> None:
    (html,) = issue_messages(issue("一条。"))
    assert html.startswith(f"<b>2025-02-14 · {TITLE}</b>\n\n1. 一条。")


def test_href_is_escaped_and_round_trips() -> None:
    url = 'https://example.com/?a=1&b="x"'
    (html,) = issue_messages(issue("正文。", urls=(url,)))
    assert 'href="https://example.com/?a=1&amp;b=&quot;x&quot;"' in html
    assert [href for href, _ in read(html).links] == [url]


# --- markdown spans --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "html_piece", "visible"),
    [
        (
            "见[官网](https://mi.com/a?x=1&y=2)。",
            '<a href="https://mi.com/a?x=1&amp;y=2">官网</a>',
            "见官网。",
        ),
        ("这是**重点 <1>**。", "<b>重点 &lt;1&gt;</b>", "这是重点 <1>。"),
        ("运行 `a<b && c`。", "<code>a&lt;b &amp;&amp; c</code>", "运行 a<b && c。"),
        (
            "原文 https://x.com/p?q=1 完",
            '<a href="https://x.com/p?q=1">https://x.com/p?q=1</a>',
            "",
        ),
    ],
)
def test_markdown_spans(source: str, html_piece: str, visible: str) -> None:
    (html,) = issue_messages(issue(source))
    assert html_piece in html
    assert f"1. {visible or visible_text(source)}" in read(html).text


def test_inline_link_is_not_repeated_but_other_urls_are() -> None:
    item = Item(1, "见[官网](https://mi.com)。", ("https://mi.com", "https://b.com/x"))
    (html,) = issue_messages(Issue(DAY, TITLE, (item,)))
    assert [href for href, _ in read(html).links] == ["https://mi.com", "https://b.com/x"]
    plain = issue_plain(Issue(DAY, TITLE, (item,)))
    assert "见官网 (https://mi.com)。\nhttps://b.com/x" in plain


def test_items_without_urls_have_no_links() -> None:
    (html,) = issue_messages(issue("没有链接的一条。", "又一条。"))
    assert "<a" not in html
    assert read(html).text.endswith("1. 没有链接的一条。\n\n2. 又一条。")
    assert "http" not in issue_plain(issue("没有链接的一条。"))


# --- splitting -------------------------------------------------------------------------------


def long_item(n: int) -> str:
    return (
        f"第{n}条开始。"
        + "这是一段用来测试拆分的较长新闻文本，包含各种内容。" * 11
        + f"第{n}条结束。"
    )


@pytest.mark.parametrize("limit", [MAX_UTF16, 1000])
def test_sixty_long_items_split_between_items(limit: int) -> None:
    iss = issue(*(long_item(n) for n in range(1, 61)), urls=("https://e.com/a&b",))
    parts = check_parts(issue_messages(iss, limit=limit), limit)
    assert len(parts) > 1
    (whole,) = issue_messages(iss, limit=10**9)
    assert squeeze("".join(p.text for p in parts)) == squeeze(read(whole).text)
    # Each item lies whole inside one part, and they come in order, once each.
    joined = "\n".join(p.text for p in parts)
    starts = [joined.index(f"{n}. 第{n}条开始。") for n in range(1, 61)]
    assert starts == sorted(starts)
    for n in range(1, 61):
        assert joined.count(f"第{n}条开始。") == 1
        assert any(visible_text(long_item(n)) in p.text for p in parts)


GIANT = {
    "sentences": "".join(f"这是第{n}句话，用来测试很长的条目如何拆分。" for n in range(400)),
    "english": " ".join(f"Sentence {n} has words (v2.5) in it." for n in range(300)),
    "no_boundary": "字" * 10_000,
    "words_only": "word " * 2_000,
    "emoji": "😀" * 10_000,
    "emoji_odd": "a" + "👩‍💻🇨🇳❤️" * 2_000,
    "with_spans": "开始 **粗体** " + "[链接](https://e.com/?a=1&b=2) " * 2_500,
}


@pytest.mark.parametrize("limit", [MAX_UTF16, 101])
@pytest.mark.parametrize("kind", sorted(GIANT))
def test_giant_item_splits_inside(kind: str, limit: int) -> None:
    iss = issue("短的一条。", GIANT[kind], "最后一条。")
    parts = check_parts(issue_messages(iss, limit=limit), limit)
    assert len(parts) > utf16_len(visible_text(GIANT[kind])) // limit
    (whole,) = issue_messages(iss, limit=10**9)
    assert squeeze("".join(p.text for p in parts)) == squeeze(read(whole).text)
    assert parts[0].bold[0] == f"2025-02-14 · {TITLE}"
    assert parts[-1].text.endswith("3. 最后一条。")


def test_sentence_splits_end_on_a_sentence() -> None:
    parts = check_parts(issue_messages(issue(GIANT["sentences"])), MAX_UTF16)
    assert all(p.text.endswith("。") for p in parts)


@pytest.mark.parametrize("kind", ["emoji_odd"])
def test_hard_splits_keep_emoji_sequences_whole(kind: str) -> None:
    parts = check_parts(issue_messages(issue(GIANT[kind]), limit=100), 100)
    for p in parts[1:]:
        assert p.text.startswith(("👩‍💻", "🇨🇳", "❤️"))


def test_links_survive_splitting() -> None:
    parts = check_parts(issue_messages(issue(GIANT["with_spans"]), limit=200), 200)
    links = [link for p in parts for link in p.links]
    assert len(links) == 2_500
    assert all(link == ("https://e.com/?a=1&b=2", "链接") for link in links)


# --- single items ----------------------------------------------------------------------------


def test_item_html_fits_and_cuts_at_a_sentence() -> None:
    item = Item(7, "第一句。第二句很长。" * 50, ("https://e.com/x",))
    html = item_html(DAY, item, limit=120)
    seen = check_parts([html], 120)[0]
    assert seen.bold[0] == "2025-02-14 #7"
    assert "。…\n" in seen.text
    assert seen.links == [("https://e.com/x", "🔗 e.com")]


def test_item_html_short_item_is_whole() -> None:
    seen = read(item_html("2025-02-14", Item(3, "很短。")))
    assert seen.text == "2025-02-14 #3\n很短。"


# --- search pages ----------------------------------------------------------------------------


def page(*hits: Hit, total: int = 12, offset: int = 0) -> SearchPage:
    return SearchPage(("小米",), total, offset, 5, hits)


@pytest.mark.parametrize(
    ("lang", "p", "header"),
    [
        ("zh", page(*[Hit(DAY, 1, "小米", ())] * 5), "🔎 “小米” 共 12 条结果（第 1–5 条）"),
        ("en", page(*[Hit(DAY, 1, "小米", ())] * 5), '🔎 "小米": 12 results (1–5)'),
        ("en", page(Hit(DAY, 1, "小米", ()), total=1), '🔎 "小米": 1 result (1)'),
        ("zh", page(total=0), "🔎 “小米” 共 0 条结果"),
        ("en", page(total=0), '🔎 "小米": 0 results'),
    ],
)
def test_search_header(lang: str, p: SearchPage, header: str) -> None:
    assert read(search_page_html(p, lang)).text.split("\n")[0] == header
    assert search_page_plain(p, lang).split("\n")[0] == header


@pytest.mark.parametrize(
    ("text", "marks", "bold", "links"),
    [
        ("小米汽车发布，小米股价上涨", ((0, 2), (7, 9)), ["小米", "小米"], []),
        ("a<b 小米 & co", ((4, 6),), ["小米"], []),
        ("[小米官网](https://mi.com) 发布小米", ((0, 2), (7, 9)), ["小米", "小米"], ["小米官网"]),
        ("**小米**发布", ((0, 2),), ["小米"], []),
    ],
)
def test_search_marks_bolded(
    text: str, marks: tuple[tuple[int, int], ...], bold: list[str], links: list[str]
) -> None:
    seen = read(search_page_html(page(Hit(DAY, 3, text, (), marks))))
    assert seen.bold == ["2025-02-14 #3", *bold]
    assert [label for _, label in seen.links] == links
    assert visible_text(text) in seen.text


def test_search_hit_urls_are_linked() -> None:
    seen = read(search_page_html(page(Hit(DAY, 3, "小米。", ("https://a.com/1",), ((0, 2),)))))
    assert seen.links == [("https://a.com/1", "🔗 a.com")]


@pytest.mark.parametrize("limit", [MAX_UTF16, 600])
def test_search_page_shrinks_to_fit(limit: int) -> None:
    filler = "前面的内容很多。" * 150
    hits = [
        Hit(DAY, n, filler + f"小米{n}号" + filler, (f"https://e.com/{n}",), ((1200, 1202),))
        for n in range(1, 6)
    ]
    html = search_page_html(page(*hits), limit=limit)
    seen = check_parts([html], limit)[0]
    assert seen.bold == [b for n in range(1, 6) for b in (f"2025-02-14 #{n}", "小米")]
    assert seen.text.count("…") == 10
    assert [href for href, _ in seen.links] == [f"https://e.com/{n}" for n in range(1, 6)]
    assert len(search_page_plain(page(*hits))) > limit  # the terminal gets everything


def test_empty_page_does_not_crash() -> None:
    assert read(search_page_html(page(total=0), limit=20)).text
