"""The archive parser: the real sample, every reported problem, and the quirks of real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.core.content import parse_bytes, parse_text, read_archive
from bot.core.markdown import Style, parse_inline, visible_text
from bot.core.model import Severity

from .conftest import BUNDLED

FEB = "content/2025/newsflash-202502.md"


def issue_text(
    body: str, date: str = "2025.02.14", title: str = "2025年02月14日 💡行业快讯"
) -> str:
    return f"# 2025年2月\n\n## {date}\n\n{title}\n\n{body}"


def test_bundled_sample_parses_cleanly() -> None:
    archive = read_archive(BUNDLED)
    assert archive.problems == []
    assert [d.isoformat() for d in archive.issues] == ["2025-02-06", "2025-02-10", "2025-02-14"]
    feb14 = archive.issues[dt.date(2025, 2, 14)]
    assert feb14.title == "2025年02月14日 💡行业快讯"
    assert [i.number for i in feb14.items] == list(range(1, 12))
    assert feb14.items[0].urls == ("https://mp.weixin.qq.com/s/MtnPblWpGevd-itQroSP9A",)
    assert feb14.items[0].text.startswith("百度称将在未来几个月中")
    assert archive.item_count == 31


def test_fifteen_items_two_digit_numbers_and_missing_urls() -> None:
    lines = []
    for n in range(1, 16):
        indent = " " * (len(str(n)) + 2)
        lines.append(f"{n}. 第{n}条 AT&T <b> a < b > c。\n")
        if n % 4:
            lines.append(f"{indent}https://example.com/{n}?a=1&b=2\n")
    result = parse_text(FEB, issue_text("\n".join(lines)))
    assert result.problems == []
    (issue,) = result.issues
    assert [i.number for i in issue.items] == list(range(1, 16))
    assert issue.items[3].urls == ()
    assert issue.items[12].urls == ("https://example.com/13?a=1&b=2",)
    assert issue.items[14].text == "第15条 AT&T <b> a < b > c。"


def test_continuation_lines_and_several_urls() -> None:
    body = "1. 第一行\n   第二行\n\n   https://a.example/1\n   https://b.example/2\n2. next\n"
    (issue,) = parse_text(FEB, issue_text(body)).issues
    assert issue.items[0].text == "第一行 第二行"
    assert issue.items[0].urls == ("https://a.example/1", "https://b.example/2")
    assert issue.items[1].text == "next"


def test_inline_markdown_link_counts_among_urls_and_search_sees_the_label() -> None:
    body = "1. **小米** 发布 `SU7`（[更多](https://x.example/a_(b))）\n"
    (issue,) = parse_text(FEB, issue_text(body)).issues
    item = issue.items[0]
    assert item.urls == ("https://x.example/a_(b)",)
    assert visible_text(item.text) == "小米 发布 SU7（更多）"
    styles = [s.style for s in parse_inline(item.text)]
    assert styles == [Style.BOLD, Style.PLAIN, Style.CODE, Style.PLAIN, Style.LINK, Style.PLAIN]


@pytest.mark.parametrize(
    ("text", "line", "severity", "fragment"),
    [
        (
            issue_text("1. a\n", date="2025.02.30"),
            3,
            Severity.ERROR,
            "impossible date '2025.02.30'",
        ),
        (
            issue_text("1. a\n", date="2025.03.01"),
            3,
            Severity.WARNING,
            "is in the file for 2025-02",
        ),
        (issue_text("", title="只有标题"), 3, Severity.ERROR, "has no items"),
        (issue_text("1. a\n3. b\n"), 8, Severity.WARNING, "numbering skips: expected 2, found 3"),
        (issue_text("1. a\n1. b\n"), 8, Severity.WARNING, "numbering repeats: expected 2, found 1"),
        (issue_text("1. a\n游离的文字\n"), 8, Severity.WARNING, "belongs to no item"),
        (issue_text("1. a\n   ftp://x.example/f\n"), 8, Severity.WARNING, "is not http(s)"),
        (issue_text("1. a\n   javascript:alert(1)\n"), 8, Severity.WARNING, "is not http(s)"),
        ("# 2025年2月\n\n## hello\n", 3, Severity.ERROR, "unreadable issue heading"),
        ("开头的闲话\n## 2025.02.14\n\nt\n\n1. a\n", 1, Severity.WARNING, "before the first"),
    ],
)
def test_problems_are_reported_with_file_and_line(
    text: str, line: int, severity: Severity, fragment: str
) -> None:
    problems = parse_text(FEB, text).problems
    assert any(
        p.file == FEB and p.line == line and p.severity is severity and fragment in p.message
        for p in problems
    ), [str(p) for p in problems]


def test_bad_issue_does_not_stop_the_rest() -> None:
    text = issue_text("1. a\n", date="2025.02.30") + "\n## 2025.02.14\n\nt\n\n1. ok\n"
    result = parse_text(FEB, text)
    assert [i.date for i in result.issues] == [dt.date(2025, 2, 14)]
    assert result.issues[0].items[0].text == "ok"


def test_invalid_utf8_and_empty_file() -> None:
    bad = parse_bytes(FEB, "## 2025.02.14\n\nt\n\n1. 好\n".encode() + b"\xff\xfe oops\n")
    assert bad.issues == []
    (problem,) = bad.problems
    assert problem.severity is Severity.ERROR and problem.line == 6 and "UTF-8" in problem.message
    (empty,) = parse_bytes(FEB, b"  \n").problems
    assert "empty" in empty.message


def test_duplicate_dates_name_both_places_and_the_winner(content: Path) -> None:
    (content / "newsflash-202502.md").write_text(issue_text("1. original\n"), encoding="utf-8")
    (content / "newsflash-202503.md").write_text(
        "## 2025.02.14\n\nt\n\n1. stray copy\n", encoding="utf-8"
    )
    archive = read_archive(content)
    issue = archive.issues[dt.date(2025, 2, 14)]
    assert issue.items[0].text == "original"  # the copy in its own month's file wins
    dup = [p for p in archive.problems if "also appears" in p.message]
    assert len(dup) == 1
    assert dup[0].file.endswith("newsflash-202503.md") and dup[0].line == 1
    assert "newsflash-202502.md:3" in dup[0].message and "that one is used" in dup[0].message


def test_windows_line_endings_and_bom() -> None:
    data = "\ufeff## 2025.02.14\r\n\r\nt\r\n\r\n1. a\r\n   https://x.example\r\n".encode()
    (issue,) = parse_bytes(FEB, data).issues
    assert issue.items[0].urls == ("https://x.example",)
