"""The offline console, flood control, token redaction and the error handler."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from bot import replies
from bot.config import parse_config
from bot.console import plain, run_console
from bot.core.throttle import Throttle, Verdict
from bot.logs import MASK, RedactingFormatter, redact
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config

TOKEN = "123456789:AAHx7Yqx7Yqx7Yqx7Yqx7Yqx7Yqx7Yqx7Yq"


def console(tmp_path: Path, content: Path, lines: str, lang: str = "zh") -> str:
    config = parse_config(
        {"content": {"dir": str(content)}, "storage": {"path": str(tmp_path / "c.db")}}, tmp_path
    )
    out = io.StringIO()
    import asyncio

    assert asyncio.run(run_console(config, io.StringIO(lines), out, lang)) == 0
    return out.getvalue()


def test_console_uses_the_bot_replies_and_numbered_buttons(tmp_path: Path, bundled: Path) -> None:
    out = console(tmp_path, bundled, "/date 2025-02-12\n2\n/find 小米\n小米\n/frob\n9\n/quit\n")
    assert "2025-02-12 没有快讯" in out and "[1] ◀ 2025-02-10  [2] 2025-02-14 ▶" in out
    assert "2025-02-14 · 2025年02月14日 💡行业快讯" in out  # button 2 opened the next issue
    assert out.count("🔎 “小米” 共 1 条结果") == 2  # a bare word searches too
    assert "/help" in out  # unknown command hint
    assert "Pick a number from 1 to" in out
    assert "<b>" not in out and "&amp;" not in out  # plain text, not HTML


def test_console_english_and_end_of_input(tmp_path: Path, bundled: Path) -> None:
    out = console(tmp_path, bundled, "/find\n", lang="en")
    assert "Usage: /find xiaomi" in out


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<b>a &amp; b</b> &lt;x&gt;", "a & b <x>"),
        ('<a href="https://x.org/?a=1&amp;b=2">more</a>', "more <https://x.org/?a=1&b=2>"),
        ('<a href="https://x.org/">https://x.org/</a>', "https://x.org/"),
    ],
)
def test_html_to_terminal_text(html: str, text: str) -> None:
    assert plain(html) == text


def test_throttle_warns_once_then_drops_until_the_window_passes() -> None:
    now = [0.0]
    throttle = Throttle(3, 10.0, clock=lambda: now[0])
    assert [throttle.check(1) for _ in range(3)] == [Verdict.ALLOW] * 3
    assert throttle.check(1) is Verdict.WARN
    assert throttle.check(1) is Verdict.DROP
    assert throttle.check(2) is Verdict.ALLOW  # another user is not affected
    now[0] = 10.5
    assert throttle.check(1) is Verdict.ALLOW


@pytest.mark.parametrize(
    "line",
    [
        f"HTTP Request: POST https://api.telegram.org/bot{TOKEN}/getUpdates",
        f"error: {TOKEN.split(':')[1]} in a message",
        "another bot 987654321:AAFaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa leaked",
    ],
)
def test_redaction(line: str) -> None:
    out = redact(line, [TOKEN, TOKEN.split(":")[1]])
    assert MASK in out and TOKEN.split(":")[1] not in out and "AAFaaaa" not in out


def test_formatter_redacts_exceptions_too() -> None:
    formatter = RedactingFormatter("%(message)s", [TOKEN])
    try:
        raise RuntimeError(f"bad url /bot{TOKEN}/x")
    except RuntimeError:
        record = logging.LogRecord(
            "t", logging.ERROR, "f", 1, "failed %s", (TOKEN,), exc_info=__import__("sys").exc_info()
        )
    text = formatter.format(record)
    assert TOKEN not in text and text.count(MASK) >= 2


async def test_error_handler_apologises_and_reports_to_admins(
    tmp_path: Path, bundled: Path, fake_api: FakeBotAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(ctx: replies.Ctx) -> replies.Reply:
        raise RuntimeError("<kaboom> & co")

    monkeypatch.setattr(replies, "latest", boom)
    async with BotUnderTest(fake_api, make_config(tmp_path, bundled, fake_api)) as b:
        (apology,) = await b.say(5002, "/latest")
    assert "出了点问题" in apology.text and "Traceback" not in apology.text
    (report,) = fake_api.messages_to(42)
    assert "RuntimeError: <kaboom> & co" in report.text  # escaped in HTML, intact as text
