"""The bot end to end: real python-telegram-bot over HTTP to the fake Bot API server,
which rejects what Telegram rejects (bad HTML, > 4096 UTF-16 units, > 64-byte buttons)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.core.content import read_archive
from bot.core.markdown import visible_text
from fakebot import FakeBotAPI

from .botkit import BotUnderTest, make_config
from .conftest import BUNDLED

USER = 5001
GROUP = -100777


@pytest.fixture
async def bot(tmp_path: Path, bundled: Path, open_api: FakeBotAPI) -> AsyncIterator[BotUnderTest]:
    async with BotUnderTest(open_api, make_config(tmp_path, bundled, open_api)) as b:
        yield b


async def test_replies_wait_out_flood_limits(
    tmp_path: Path, bundled: Path, fake_api: FakeBotAPI
) -> None:
    async with BotUnderTest(fake_api, make_config(tmp_path, bundled, fake_api)) as b:
        answers = [await b.say(USER, "/help") for _ in range(5)]
    assert all(len(a) == 1 for a in answers)  # every reply arrived, none lost to a 429
    assert fake_api.count_429 >= 1  # ... although Telegram (the fake) pushed back


def texts(messages: list) -> str:  # type: ignore[type-arg]
    return "\n".join(m.text for m in messages)


async def test_commands_menu_registered_in_both_languages(bot: BotUnderTest) -> None:
    zh = {c["command"]: c["description"] for c in bot.api.commands(language_code="zh")}
    en = {c["command"]: c["description"] for c in bot.api.commands(language_code="en")}
    assert zh["find"].startswith("搜索") and en["find"].startswith("Search")
    assert set(zh) == set(en) >= {"start", "stop", "latest", "date", "find", "list", "help"}


async def test_start_subscribes_then_stop(bot: BotUnderTest) -> None:
    (welcome,) = await bot.say(USER, "/start")
    assert "08:30" in welcome.text and "/find" in welcome.text
    (again,) = await bot.say(USER, "/start")
    assert "已经订阅" in again.text
    (bye,) = await bot.say(USER, "/stop")
    assert "已退订" in bye.text
    (nope,) = await bot.say(USER, "/stop")
    assert "没有订阅" in nope.text


async def test_group_subscription_needs_an_admin(bot: BotUnderTest) -> None:
    bot.api.set_member(GROUP, 7, "member")
    (refused,) = await bot.say(GROUP, "/start", user_id=7, chat_type="supergroup")
    assert "管理员" in refused.text
    bot.api.set_member(GROUP, 8, "administrator")
    (ok,) = await bot.say(GROUP, "/start@briefbot_test_bot", user_id=8, chat_type="supergroup")
    assert "08:30" in ok.text
    assert any(c.params.get("user_id") in (7, "7") for c in bot.api.calls("getChatMember"))


async def test_latest_shows_the_newest_issue_as_in_the_archive(bot: BotUnderTest) -> None:
    messages = await bot.say(USER, "/latest", language_code="en")
    issue = read_archive(BUNDLED).issues
    newest = issue[max(issue)]
    seen = texts(messages)
    assert seen.startswith("2025-02-14 · 2025年02月14日 💡行业快讯")
    for item in newest.items:
        assert visible_text(item.text) in seen
    assert messages[-1].callback_data == ["i:2025-02-10"]  # ◀ previous issue, no next
    assert len(messages[0].entities_of("text_link")) >= len(newest.items)


@pytest.mark.parametrize(
    "arg", ["2025-02-14", "2025.02.14", "2025/2/14", "20250214", "2025年2月14日"]
)
async def test_date_forms(bot: BotUnderTest, arg: str) -> None:
    messages = await bot.say(USER, f"/date {arg}")
    assert messages[0].text.startswith("2025-02-14 · ")
    assert messages[-1].callback_data == ["i:2025-02-10"]


async def test_date_without_issue_offers_neighbours_and_buttons_open_them(
    bot: BotUnderTest,
) -> None:
    (reply,) = await bot.say(USER, "/date 2025-02-12")
    assert "2025-02-12" in reply.text and reply.callback_data == ["i:2025-02-10", "i:2025-02-14"]
    opened = await bot.press(USER, reply, "i:2025-02-14")
    assert opened[0].text.startswith("2025-02-14 · ")


@pytest.mark.parametrize("arg", ["", "2025-02-30", "next tuesday", "<b>", "&amp;"])
async def test_date_usage_and_bad_dates(bot: BotUnderTest, arg: str) -> None:
    (reply,) = await bot.say(USER, f"/date {arg}".strip())
    assert "2025-02-14" in reply.text and ("用法" in reply.text or "看不懂" in reply.text)
    if arg:
        assert arg in reply.text  # echoed back safely escaped, exactly as typed


async def test_find_marks_terms_and_pages_in_place(bot: BotUnderTest) -> None:
    (page1,) = await bot.say(USER, "/find DeepSeek")
    assert "共 6 条结果" in page1.text and "（第 1–5 条）" in page1.text
    assert set(page1.entities_of("bold")) >= {"DeepSeek"}
    assert len(page1.callback_data) == 1
    (page2,) = await bot.press(USER, page1, page1.callback_data[0])
    assert page2.edited and page2.message_id == page1.message_id
    assert "（第 6 条）" in page2.text
    (back,) = await bot.press(USER, page2, page2.callback_data[0])
    assert "（第 1–5 条）" in back.text


async def test_find_in_a_group_with_the_bot_name(bot: BotUnderTest) -> None:
    (reply,) = await bot.say(GROUP, "/find@briefbot_test_bot 小米", chat_type="supergroup")
    assert "小米" in reply.entities_of("bold")


async def test_find_nothing_and_usage(bot: BotUnderTest) -> None:
    (none,) = await bot.say(USER, "/find 不存在的词")
    assert "没有找到" in none.text and "更短" in none.text
    (usage,) = await bot.say(USER, "/find")
    assert "用法" in usage.text


@pytest.mark.parametrize(
    "query",
    [
        '"',
        "*",
        "AND OR NOT",
        "NEAR(",
        "-小米",
        "a:b",
        "()",
        "%_",
        "\\",
        "'; DROP TABLE items; --",
        "😀",
        "\u200b",
        "x" * 4000,
        "<script>alert(1)</script>",
        "&amp;",
        "AT&T",
        "小米 2025-13",
    ],
)
async def test_hostile_find_gets_an_answer(bot: BotUnderTest, query: str) -> None:
    replies = await bot.say(USER, f"/find {query}")
    assert len(replies) == 1  # answered, with Telegram-valid HTML (the fake checks it)
    assert "出了点问题" not in replies[0].text  # not the error handler's apology


async def test_list_and_month_buttons(bot: BotUnderTest) -> None:
    (month,) = await bot.say(USER, "/list")
    assert "2025-02" in month.text and month.callback_data == [
        "i:2025-02-06",
        "i:2025-02-10",
        "i:2025-02-14",
    ]
    opened = await bot.press(USER, month, "i:2025-02-06")
    assert opened[0].text.startswith("2025-02-06 · ")
    (empty,) = await bot.say(USER, "/list 2024-01")
    assert "没有快讯" in empty.text and "l:2025-02" in empty.callback_data


async def test_stale_and_garbage_buttons_get_an_answer(bot: BotUnderTest) -> None:
    (reply,) = await bot.say(USER, "/latest")
    for data in ["i:2019-01-01", "i:not-a-date", "F:0:deadbeefdeadbeef", "zzz", "f:x:y"]:
        before = len(bot.api.callback_answers)
        await bot.press(USER, reply, data)
        answers = bot.api.callback_answers[before:]
        assert answers and "过期" in answers[-1].get("text", "")


async def test_long_query_pages_through_a_short_key(bot: BotUnderTest) -> None:
    long_query = "DeepSeek " * 6 + "2025-02-01..2025-02-28"  # > 64 bytes in a button
    (page1,) = await bot.say(USER, f"/find {long_query}")
    (data,) = page1.callback_data
    assert data.startswith("F:") and len(data.encode()) <= 64
    (page2,) = await bot.press(USER, page1, data)
    assert page2.edited and "（第 6 条）" in page2.text


async def test_help_unknown_and_english(bot: BotUnderTest) -> None:
    (helped,) = await bot.say(USER, "/help")
    assert "/find" in helped.text and "@briefbot_test_bot" in helped.text
    (unknown,) = await bot.say(USER, "/frobnicate")
    assert "/help" in unknown.text
    (en,) = await bot.say(USER + 1, "/help", language_code="en")
    assert "Commands" in en.text
    await bot.say(USER + 1, "/lang zh", language_code="en")
    (zh,) = await bot.say(USER + 1, "/help", language_code="en")
    assert "命令" in zh.text


async def test_inline_queries(bot: BotUnderTest) -> None:
    found = await bot.inline("小米")
    assert len(found["parsed"]) == 1 and "小米" in found["parsed"][0]["text"]
    by_date = await bot.inline("2025-02-14")
    assert len(by_date["parsed"]) == 11
    latest = await bot.inline("")
    assert [r["id"] for r in latest["parsed"]] == [r["id"] for r in by_date["parsed"]]
    many = await bot.inline("的")
    assert len(many["parsed"]) == 20 and many.get("next_offset") == "20"
    rest = await bot.inline("的", offset="20")
    assert not {r["id"] for r in rest["parsed"]} & {r["id"] for r in many["parsed"]}


async def test_flooding_user_is_throttled_others_are_not(bot: BotUnderTest) -> None:
    answers = [await bot.say(USER, "/help") for _ in range(12)]
    slow = [a for a in answers if a and "太快" in a[0].text]
    silent = [a for a in answers if not a]
    assert len(slow) == 1 and len(silent) == 12 - 8 - 1
    (other,) = await bot.say(USER + 2, "/help")
    assert "/find" in other.text


HOSTILE = """
## 2025.02.14

标题 <b>不是标签</b> & 符号

1. <script>alert("x")</script> 与 AT&T、a < b > c、字面 &amp; 和 😀🚀 以及 RTL\u200f标记
   https://example.com/a?x=1&y="2"
2. **粗体** 和 `code <x>` 和 [链接 & 标签](https://example.com/p?a=1&b=2)
"""


async def test_content_reaches_the_user_exactly(
    tmp_path: Path, content: Path, write: Callable[[str, str], Path], open_api: FakeBotAPI
) -> None:
    write("newsflash-202502.md", HOSTILE)
    async with BotUnderTest(open_api, make_config(tmp_path, content, open_api)) as b:
        (message,) = await b.say(USER, "/latest")
    assert "标题 <b>不是标签</b> & 符号" in message.text
    assert (
        '<script>alert("x")</script> 与 AT&T、a < b > c、字面 &amp; 和 😀🚀 以及 RTL\u200f标记'
        in message.text
    )
    assert "粗体" in message.entities_of("bold") and "code <x>" in message.entities_of("code")
    links = [e["url"] for e in message.entities if e["type"] == "text_link"]
    assert "https://example.com/p?a=1&b=2" in links and 'https://example.com/a?x=1&y="2"' in links


async def test_sixty_long_items_split_into_valid_complete_parts(
    tmp_path: Path, content: Path, write: Callable[[str, str], Path], open_api: FakeBotAPI
) -> None:
    items = "\n".join(
        f"{n}. 第{n}条："
        + "芯片与人工智能的长句子，含 AT&T 和 <标记>。" * 12
        + f"结束{n}。\n   https://example.com/{n}"
        for n in range(1, 61)
    )
    write("newsflash-202502.md", f"## 2025.02.14\n\n长的一期\n\n{items}\n")
    async with BotUnderTest(open_api, make_config(tmp_path, content, open_api)) as b:
        messages = await b.say(USER, "/latest")
    assert len(messages) > 1
    joined = texts(messages)
    positions = [joined.index(f"第{n}条：") for n in range(1, 61)]
    assert positions == sorted(positions)
    for n in range(1, 61):
        assert joined.count(f"结束{n}。") == 1
    assert all(len(m.text.encode("utf-16-le")) // 2 <= 4096 for m in messages)
