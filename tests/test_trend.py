"""/trend: the pure bucketing, the SQL counts against a naive scan, the reply, the chart
through the fake Bot API (a real PNG upload), the console and the CLI."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from telegram.error import BadRequest

from bot.cli import main
from bot.config import parse_config
from bot.console import run_console
from bot.core import chart
from bot.core.content import read_archive
from bot.core.markdown import visible_text
from bot.core.search import matches
from bot.core.trend import (
    CountRow,
    Series,
    Trend,
    build_series,
    choose_bucket,
    clip_utf16,
    period_of,
    periods,
    sparkline,
    to_json,
    utf16_len,
)
from bot.db.archive import Archive
from bot.replies import CAPTION_LIMIT, Ctx, Reply, trend, trend_caption
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config

PNG = b"\x89PNG\r\n\x1a\n"
D = dt.date
USER = 5101


def _issue(day: D, items: list[str]) -> str:
    body = "\n\n".join(f"{i}. {text}" for i, text in enumerate(items, 1))
    return f"## {day:%Y.%m.%d}\n\n{day:%Y年%m月%d日} 💡行业快讯\n\n{body}\n\n"


@pytest.fixture
def spread(write: Callable[[str, str], Path], content: Path) -> Path:
    """Six months of issues: 小米 in Jan (2), Mar (1), Jun (3); 华为 in Mar (2)."""
    months: dict[str, list[tuple[D, list[str]]]] = {
        "202501": [(D(2025, 1, 6), ["小米 发布新机", "小米 汽车交付"]), (D(2025, 1, 20), ["无关"])],
        "202502": [(D(2025, 2, 10), ["平平无奇"])],
        "202503": [(D(2025, 3, 3), ["华为 与 小米 竞争", "华为 芯片"])],
        "202506": [(D(2025, 6, 30), ["小米 一", "小米 二", "小米 三 XIAOMI"])],
    }
    for key, issues in months.items():
        text = f"# {key[:4]}年{int(key[4:])}月\n\n" + "".join(_issue(d, i) for d, i in issues)
        write(f"{key[:4]}/newsflash-{key}.md", text)
    return content


# -- pure --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "bucket"),
    [
        (D(2025, 2, 1), D(2025, 2, 28), "week"),
        (D(2025, 1, 1), D(2025, 4, 30), "week"),  # 119 days
        (D(2025, 1, 1), D(2025, 5, 31), "month"),
        (D(2019, 1, 1), D(2025, 12, 31), "month"),
    ],
)
def test_short_ranges_are_weekly(start: D, end: D, bucket: str) -> None:
    assert choose_bucket(start, end) == bucket


@pytest.mark.parametrize(
    ("start", "end", "bucket", "expected"),
    [
        (D(2024, 11, 15), D(2025, 2, 1), "month", ["2024-11", "2024-12", "2025-01", "2025-02"]),
        (D(2025, 2, 6), D(2025, 2, 14), "week", ["2025-02-03", "2025-02-10"]),
        (D(2025, 2, 9), D(2025, 2, 10), "week", ["2025-02-03", "2025-02-10"]),  # Sun, Mon
        (D(2025, 3, 1), D(2025, 2, 1), "month", []),
    ],
)
def test_periods_cover_the_range(start: D, end: D, bucket: str, expected: list[str]) -> None:
    assert periods(start, end, bucket) == expected  # type: ignore[arg-type]


def test_days_sum_into_weeks_and_gaps_are_zeros() -> None:
    rows = [
        CountRow("2025-02-03", 1, D(2025, 2, 3), D(2025, 2, 3)),
        CountRow("2025-02-09", 2, D(2025, 2, 9), D(2025, 2, 9)),  # Sunday: same week
        CountRow("2025-02-24", 4, D(2025, 2, 24), D(2025, 2, 24)),
    ]
    s = build_series("x", rows, D(2025, 2, 1), D(2025, 2, 28), "week")
    assert s.counts == (
        ("2025-01-27", 0),
        ("2025-02-03", 3),
        ("2025-02-10", 0),
        ("2025-02-17", 0),
        ("2025-02-24", 4),
    )
    assert (s.total, s.peak, s.first, s.last) == (
        7,
        ("2025-02-24", 4),
        D(2025, 2, 3),
        D(2025, 2, 24),
    )
    assert period_of(D(2025, 2, 9), "week") == "2025-02-03"


def test_peak_is_the_earliest_of_equals_and_none_without_hits() -> None:
    assert Series("x", (("a", 2), ("b", 2)), None, None).peak == ("a", 2)
    assert Series("x", (("a", 0),), None, None).peak is None


@pytest.mark.parametrize(
    ("counts", "line"),
    [([0, 1, 2, 4, 8], "▁▂▃▅█"), ([0, 0], "▁▁"), ([3], "█"), ([], ""), ([1, 100], "▂█")],
)
def test_sparkline(counts: list[int], line: str) -> None:
    assert sparkline(counts) == line


def test_clip_counts_utf16_units() -> None:
    assert clip_utf16("abc", 3) == "abc"
    clipped = clip_utf16("😀" * 10, 7)  # each emoji is two units
    assert utf16_len(clipped) <= 7 and clipped.endswith("…")


def test_json_shape() -> None:
    s = Series("小米", (("2025-02", 3),), D(2025, 2, 1), D(2025, 2, 3))
    assert to_json(Trend("month", (s,))) == {
        "bucket": "month",
        "total": 3,
        "series": [{"term": "小米", "counts": [{"period": "2025-02", "count": 3}]}],
    }


def test_caption_obeys_the_limit_with_the_longest_terms() -> None:
    terms = ["😀" * 64, "長" * 64, "x" * 64, "&<>" * 21]
    series = tuple(
        Series(t, tuple((f"2025-{m:02d}", m) for m in range(1, 13)), D(2025, 1, 1), D(2025, 12, 1))
        for t in terms
    )
    for lang in ("zh", "en"):
        text = trend_caption(lang, Trend("month", series), numbered=True)
        assert utf16_len(text) <= CAPTION_LIMIT
        assert "#4" in text
        assert ("2025-12（12 条）" if lang == "zh" else "peak 2025-12 (12)") in text


def test_legend_names_terms_only_when_a_font_has_them(monkeypatch: pytest.MonkeyPatch) -> None:
    assert chart.legend_labels(("ai", "chip"))[0] == ["ai", "chip"]  # DejaVu has Latin
    monkeypatch.setattr(chart, "font_for", lambda text: None)
    assert chart.legend_labels(("小米", "华为")) == (["#1", "#2"], None)
    monkeypatch.setattr(chart, "font_for", lambda text: "Noto Sans CJK SC")
    assert chart.legend_labels(("小米",)) == (["小米"], "Noto Sans CJK SC")


def test_the_fallback_font_does_not_count_as_having_cjk() -> None:
    # matplotlib's "Last Resort" font claims every character and draws boxes for them.
    family = chart.font_for("小米")
    assert family is None or not family.startswith("Last Resort")


# -- counts in SQL -----------------------------------------------------------------------


@pytest.fixture
async def archive(tmp_path: Path, spread: Path) -> AsyncIterator[Archive]:
    a = await Archive.open(tmp_path / "t.sqlite3")
    await a.sync(spread)
    yield a
    await a.close()


async def test_sql_counts_agree_with_a_naive_scan(archive: Archive, spread: Path) -> None:
    issues = read_archive(spread).issues
    for term in ("小米", "华为", "xiaomi", "芯", "无"):
        naive: dict[str, int] = {}
        for day, issue in issues.items():
            for item in issue.items:
                if matches(visible_text(item.text), (term,)):
                    naive[day.isoformat()[:7]] = naive.get(day.isoformat()[:7], 0) + 1
        rows = await archive.match_counts((term,))
        assert {r.key: r.count for r in rows} == naive, term


async def test_counts_respect_the_date_range_and_days(archive: Archive) -> None:
    rows = await archive.match_counts(("小米",), D(2025, 3, 1), D(2025, 6, 30), by_day=True)
    assert [(r.key, r.count) for r in rows] == [("2025-03-03", 1), ("2025-06-30", 3)]
    assert await archive.date_span() == (D(2025, 1, 6), D(2025, 6, 30))


# -- the reply ---------------------------------------------------------------------------


async def test_trend_reply_is_a_png_with_a_caption(archive: Archive) -> None:
    reply = await trend(Ctx(archive, "zh"), "小米 华为")
    assert reply.photo is not None and reply.photo.startswith(PNG)
    assert not reply.messages
    assert "2025-01 至 2025-06，按月统计" in reply.caption
    assert (
        "“小米”：共 6 条，最多在 2025-06（3 条），最早 2025-01-06，最近 2025-06-30" in reply.caption
    )
    assert "“华为”：共 2 条" in reply.caption


async def test_trend_with_a_short_filter_is_weekly(archive: Archive) -> None:
    reply = await trend(Ctx(archive, "en"), "小米 2025-06")
    assert "per week" in reply.caption and "“小米”: 3 items" in reply.caption


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("", "用法：/trend"),
        ("2025", "用法：/trend"),
        ("a b c d e", "最多比较 4 个词"),
        ("没有这个词", "没有找到“没有这个词”"),
        ("小米 2030", "没有找到"),  # a filter outside the archive
        ("小米 2025-13", "搜索有问题"),
    ],
)
async def test_nothing_to_draw_is_a_text_answer(archive: Archive, arg: str, expected: str) -> None:
    reply = await trend(Ctx(archive, "zh"), arg)
    assert reply.photo is None and expected in reply.messages[0]


async def test_empty_archive(store: Archive) -> None:
    reply = await trend(Ctx(store, "zh"), "小米")
    assert isinstance(reply, Reply) and reply.photo is None and "没有找到" in reply.messages[0]


# -- through the fake Bot API ------------------------------------------------------------


async def test_trend_sends_a_real_png_through_send_photo(
    tmp_path: Path, spread: Path, open_api: FakeBotAPI
) -> None:
    async with BotUnderTest(open_api, make_config(tmp_path, spread, open_api)) as bot:
        (photo,) = await bot.say(USER, "/trend 小米 华为")
        assert photo.method == "sendPhoto"
        data = photo.params["photo"].data
        assert data.startswith(PNG) and 5_000 < len(data) < 500_000
        (size,) = photo.message["photo"]  # type: ignore[index]
        assert (size["width"], size["height"]) == (1000, 600)
        assert "共 6 条" in photo.text and "2025-01-06" in photo.text
        (text,) = await bot.say(USER, "/trend 没有这个词")
        assert text.method == "sendMessage" and "没有找到" in text.text
        menu = {c["command"] for c in open_api.commands(language_code="en")}
        assert "trend" in menu
        (help_text,) = await bot.say(USER, "/help")
        assert "/trend" in help_text.text


async def test_fake_send_photo_rejects_what_telegram_rejects(open_api: FakeBotAPI) -> None:
    bot = open_api.bot()
    async with bot:
        png = chart.render_png(
            Trend("month", (Series("a", (("2025-01", 1),), D(2025, 1, 1), D(2025, 1, 1)),)),
            ["a"],
        )
        with pytest.raises(BadRequest, match="Message caption is too long"):
            await bot.send_photo(USER, png, caption="x" * 1025)
        with pytest.raises(BadRequest, match="Image_process_failed"):
            await bot.send_photo(USER, b"not a picture")
        with pytest.raises(BadRequest, match="Wrong file identifier/http url specified"):
            await bot.send_photo(USER, "no-such-file-id")
        sent = await bot.send_photo(USER, png, caption="x" * 1024)  # exactly the limit
        again = await bot.send_photo(USER, sent.photo[-1].file_id)  # a file_id it issued
        assert again.photo[-1].width == 1000
    failed = [c for c in open_api.calls("sendPhoto") if not c.ok]
    assert [c.description for c in failed] == [
        "Bad Request: message caption is too long",
        "Bad Request: IMAGE_PROCESS_FAILED",
        "Bad Request: wrong file identifier/HTTP URL specified",
    ]


# -- console and CLI ---------------------------------------------------------------------


def test_console_prints_a_sparkline_and_writes_the_png(tmp_path: Path, spread: Path) -> None:
    import asyncio

    config = parse_config(
        {"content": {"dir": str(spread)}, "storage": {"path": str(tmp_path / "c.db")}}, tmp_path
    )
    out = io.StringIO()
    assert asyncio.run(run_console(config, io.StringIO("/trend 小米\n"), out)) == 0
    text = out.getvalue()
    assert "小米  ▆▁▃▁▁█  6" in text  # Jan 2, Feb 0, Mar 1, Apr 0, May 0, Jun 3
    path = Path(text.split("PNG: ", 1)[1].split()[0])
    try:
        assert path.read_bytes().startswith(PNG)
    finally:
        path.unlink()


def test_cli_trend_json_and_png(
    tmp_path: Path, spread: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"content:\n  dir: {spread}\nstorage:\n  path: {tmp_path / 'db.sqlite3'}\n")
    png = tmp_path / "t.png"
    assert main(["trend", "--config", str(cfg), "小米", "--json", "--png", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bucket"] == "month" and data["total"] == 6
    assert data["series"][0]["term"] == "小米"
    assert data["series"][0]["counts"][:2] == [
        {"period": "2025-01", "count": 2},
        {"period": "2025-02", "count": 0},
    ]
    assert png.read_bytes().startswith(PNG)
    assert main(["trend", "--config", str(cfg), "无此词", "--png", str(tmp_path / "n.png")]) == 1
    assert "nothing found" in capsys.readouterr().err and not (tmp_path / "n.png").exists()
    assert main(["trend", "--config", str(cfg), "a", "b", "c", "d", "e"]) == 2


def test_the_bot_starts_without_importing_matplotlib() -> None:
    import subprocess
    import sys

    code = "import sys, bot.telegram.app, bot.console, bot.cli; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
