"""Links to the channel post: once an issue went to a public channel, /date, /latest, each
/find hit and each inline result link the message in that channel that holds it. End to
end through the fake Bot API (the message ids are the ones it returned), plus the pure
mapping of items to parts and the outbox lookup."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot import replies
from bot.config import parse_config
from bot.core.model import Issue, Item
from bot.core.postlinks import item_parts, post_url, visible
from bot.core.render import issue_messages
from bot.db import channels, chats, outbox
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.delivery.engine import limits_for
from bot.delivery.posts import Link, post_links
from fakebot import FakeBotAPI
from fakebot.state import SentMessage

from .botkit import BotUnderTest, make_config

USER, OWNER = 6101, 6102
PUBLIC, OTHER, PRIVATE = -1001111, -1002222, -1003333
SHORT, LONG = dt.date(2025, 2, 13), dt.date(2025, 2, 14)
LINK = re.compile(r"https://t\.me/(\w+)/(\d+)")


def long_items(n: int) -> str:
    return "\n".join(
        f"{k}. 第{k}条：" + "芯片与人工智能的长句子，含 AT&T 和 <标记>。" * 12 + f"结束{k}号。"
        f"\n   https://example.com/{k}"
        for k in range(1, n + 1)
    )


ARCHIVE = f"""
## 2025.02.13

短的一期

1. 小米发布新手机。
2. 华为发布新芯片。

## 2025.02.14

长的一期

{long_items(60)}
"""


@pytest.fixture
async def bot(
    tmp_path: Path,
    content: Path,
    write: Callable[[str, str], Path],
    open_api: FakeBotAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[BotUnderTest]:
    write("2025/newsflash-202502.md", ARCHIVE)
    # A channel may get 20 messages a minute, which the sender keeps to; these tests post
    # five-part issues to one channel, and the fake (without flood limits) does not count.
    fast = dataclasses.replace(
        limits_for(parse_config({}, tmp_path).delivery),
        group_per_minute=6000,
        group_burst=20,
    )
    monkeypatch.setattr("bot.telegram.app.limits_for", lambda _: fast)
    config = make_config(tmp_path, content, open_api, telegram={"throttle": {"messages": 1000}})
    async with BotUnderTest(open_api, config) as b:
        yield b


async def add_channel(bot: BotUnderTest, chat_id: int, username: str | None) -> None:
    """A channel the bot administers, subscribed by its owner with /channel."""
    bot.api.add_chat(chat_id, "channel", title=f"channel {chat_id}", username=username)
    bot.api.set_member(chat_id, bot.api.bot_id, "administrator")
    bot.api.set_member(chat_id, OWNER, "administrator")
    (on,) = await bot.say(OWNER, f"/channel {'@' + username if username else chat_id}")
    assert "已订阅" in on.text


async def deliver(bot: BotUnderTest, date: dt.date) -> None:
    """Post the issue now to every subscriber lacking it, and wait until it is sent."""
    engine = bot.app.bot_data.services.engine
    plan = await engine.broadcast_now(date, "cli")
    report = await asyncio.wait_for(engine.wait(plan.broadcast_id, poll=0.02), 20)
    assert report is not None and report.failed == 0


def posted(bot: BotUnderTest, chat_id: int, marker: str) -> int:
    """The message id the fake returned for the message to chat_id containing marker."""
    (message,) = [m for m in bot.api.messages_to(chat_id) if marker in m.text]
    assert message.message_id is not None
    return message.message_id


def links(message: SentMessage | dict[str, Any]) -> list[tuple[str, int]]:
    """The t.me post links among a message's (or an inline result's) text links."""
    entities = message.entities if isinstance(message, SentMessage) else message["entities"]
    urls = [e["url"] for e in entities if e["type"] == "text_link"]
    return [(m[1], int(m[2])) for url in urls if (m := LINK.fullmatch(url))]


async def test_date_and_latest_link_the_first_message_in_the_public_channel(
    bot: BotUnderTest,
) -> None:
    (before,) = await bot.say(USER, "/date 2025-02-13")
    assert "频道原文" not in before.text and not links(before)
    await add_channel(bot, PUBLIC, "techchan")
    await deliver(bot, SHORT)
    await deliver(bot, LONG)
    short_id = posted(bot, PUBLIC, "短的一期")
    long_id = posted(bot, PUBLIC, "长的一期")
    assert short_id != long_id

    (short,) = await bot.say(USER, "/date 2025-02-13")
    assert "📢 频道原文：" in short.text and links(short) == [("techchan", short_id)]
    latest = await bot.say(USER, "/latest")
    assert len(latest) > 1  # five parts; the link goes under the last, to the first post
    assert [links(m) for m in latest[:-1]] == [[]] * (len(latest) - 1)
    assert links(latest[-1]) == [("techchan", long_id)]

    await bot.say(USER, "/lang en")
    (english,) = await bot.say(USER, "/date 2025-02-13")
    assert "📢 In the channel: t.me/techchan/" in english.text


async def test_find_and_inline_link_the_part_that_holds_the_item(bot: BotUnderTest) -> None:
    await add_channel(bot, PUBLIC, "techchan")
    await deliver(bot, LONG)
    parts = [m for m in bot.api.messages_to(PUBLIC)]
    assert len(parts) >= 4
    for n in (1, 30, 45, 60):
        holder = posted(bot, PUBLIC, f"第{n}条：")
        (found,) = await bot.say(USER, f"/find 结束{n}号")
        assert links(found) == [("techchan", holder)], n
        assert f"📢 2025-02-14 #{n} 频道原文：t.me/techchan/{holder}" in found.text
        inline = await bot.inline(f"结束{n}号")
        (result,) = inline["parsed"]
        assert links(result) == [("techchan", holder)]
    assert posted(bot, PUBLIC, "第1条：") != posted(bot, PUBLIC, "第60条：")
    by_date = await bot.inline("2025-02-14")
    first = by_date["parsed"][0]
    assert links(first) == [("techchan", posted(bot, PUBLIC, "第1条："))]


async def test_a_channel_without_username_gets_no_link(bot: BotUnderTest) -> None:
    await add_channel(bot, PRIVATE, None)
    await deliver(bot, SHORT)
    assert posted(bot, PRIVATE, "短的一期")
    (shown,) = await bot.say(USER, "/date 2025-02-13")
    assert "频道原文" not in shown.text and "t.me" not in shown.text
    (found,) = await bot.say(USER, "/find 小米")
    assert "t.me" not in found.text
    result = (await bot.inline("小米"))["parsed"][0]
    assert "t.me" not in result["text"]


async def test_the_first_public_post_keeps_the_link(bot: BotUnderTest) -> None:
    await add_channel(bot, PRIVATE, None)  # first of all, but it has no public link
    await deliver(bot, SHORT)
    await add_channel(bot, PUBLIC, "techchan")
    await deliver(bot, SHORT)
    await add_channel(bot, OTHER, "otherchan")
    await bot.say(OWNER, "/channel @otherchan")
    await deliver(bot, SHORT)  # reaches only the channel that lacked it
    assert posted(bot, OTHER, "短的一期")
    (shown,) = await bot.say(USER, "/date 2025-02-13")
    assert links(shown) == [("techchan", posted(bot, PUBLIC, "短的一期"))]


# -- the outbox lookup --------------------------------------------------------------------


async def test_channel_posts_reads_sent_parts_of_the_first_public_channel(
    store: Archive,
) -> None:
    db = store.db
    infos = [
        ChatInfo(-1, "channel", "late", "late"),
        ChatInfo(-2, "channel", "first", "first"),
        ChatInfo(-3, "channel", "nameless", None),
        ChatInfo(7, "private", "user", "someone"),
    ]
    for info in infos:
        await chats.subscribe(db, info)
    async with db.transaction():
        tid = await outbox.text_id(db, "<b>2025-02-14</b>")
        rows = [(-3, 0), (7, 0), (-2, 0), (-2, 1), (-1, 0), (-2, 2)]
        for chat_id, part in rows:
            await db.execute(
                "INSERT INTO outbox (kind, issue, chat_id, part, text_id, created_at)"
                " VALUES ('issue', '2025-02-14', ?, ?, ?, 0)",
                [chat_id, part, tid],
            )
        await db.execute("UPDATE outbox SET status = 'sent', message_id = 100 + id WHERE part != 1")
    posts = await channels.channel_posts(db, [LONG, SHORT])
    assert list(posts) == [LONG]
    post = posts[LONG]
    ids = dict(await db.rows("SELECT part, message_id FROM outbox WHERE chat_id = -2"))
    assert post.username == "first" and post.message_ids == {0: ids[0], 2: ids[2]}
    assert await channels.channel_posts(db, []) == {}
    plan = await db.rows("EXPLAIN QUERY PLAN " + channels._CHANNEL_ROWS.format("?"), ["2025-02-14"])
    assert any("chats_public_channels" in str(row) for row in plan)


# -- the pure mapping ---------------------------------------------------------------------


def issue_of(texts: list[str]) -> Issue:
    return Issue(LONG, "标题", tuple(Item(n, text) for n, text in enumerate(texts, 1)))


@pytest.mark.parametrize(
    ("texts", "limit"),
    [
        (["短"] * 3, 4096),
        (["甲" * 300] * 40, 4096),
        (["**粗体** 与 [链接](https://e.com) `code` & <x>"] * 30, 200),
        (["1. 2. 3." * 40, "2. 假的开头"] * 10, 300),  # texts that look like item starts
        (["句子。" * 300] * 3, 500),  # items cut into pieces across parts
    ],
)
def test_item_parts_finds_each_item_in_the_part_it_starts_in(texts: list[str], limit: int) -> None:
    issue = issue_of(texts)
    parts = issue_messages(issue, "zh", limit=limit)
    found = item_parts(issue, parts)
    placed = [index for index in found if index is not None]
    assert len(placed) == len(found) and placed == sorted(placed)
    for item, index in zip(issue.items, found, strict=True):
        assert index is not None
        shown = visible(parts[index])
        head = f"{item.number}. "
        assert shown.startswith(head) or f"\n\n{head}" in shown


def test_item_parts_of_other_texts_finds_nothing() -> None:
    issue = issue_of(["小米", "华为"])
    assert item_parts(issue, ["<b>别的</b>\n\n1. 苹果"]) == [None, None]
    assert item_parts(issue, []) == [None, None]


def test_post_url_and_visible() -> None:
    assert post_url("@techchan", 12) == "https://t.me/techchan/12"
    assert visible('<b>a &amp; b</b> <a href="https://x/?a=1&amp;b=&quot;">&lt;c&gt;</a>') == (
        "a & b <c>"
    )


async def test_a_full_last_message_gets_the_link_as_a_message_of_its_own(
    tmp_path: Path, write: Callable[[str, str], Path], content: Path
) -> None:
    # Two items (one may hold at most 4000 characters) filling the message but 5 units.
    room = 4096 - 5 - len("2025-02-14 · T") - 2 * len("\n\n1. ")
    items = f"1. {'满' * 2000}\n2. {'满' * (room - 2000)}\n"
    write("2025/newsflash-202502.md", f"## 2025.02.14\n\nT\n\n{items}")
    archive = await Archive.open(tmp_path / "full.sqlite3")
    try:
        await archive.sync(content)
        issue = await archive.issue(LONG)
        assert issue is not None
        (html,) = issue_messages(issue)
        await chats.subscribe(archive.db, ChatInfo(-5, "channel", "c", "full"))
        async with archive.db.transaction():
            tid = await outbox.text_id(archive.db, html)
            await archive.db.execute(
                "INSERT INTO outbox (kind, issue, chat_id, part, text_id, created_at, status,"
                " message_id) VALUES ('issue', '2025-02-14', -5, 0, ?, 0, 'sent', 77)",
                [tid],
            )
        reply = await replies.by_date(replies.Ctx(archive), "2025-02-14")
        assert reply.messages[0] == html
        assert reply.messages[1] == ('📢 频道原文：<a href="https://t.me/full/77">t.me/full/77</a>')
    finally:
        await archive.close()


async def test_a_corrected_issue_links_the_message_that_shows_the_item_now(
    tmp_path: Path, write: Callable[[str, str], Path], content: Path
) -> None:
    write("2025/newsflash-202502.md", "## 2025.02.14\n\nT\n\n1. 甲事\n2. 乙事\n")
    archive = await Archive.open(tmp_path / "edit.sqlite3")
    try:
        await archive.sync(content)
        db = archive.db
        await chats.subscribe(db, ChatInfo(-7, "channel", "c", "pub"))
        async with db.transaction():
            first = await outbox.text_id(db, "<b>2025-02-14 · T</b>\n\n1. 甲事")
            second = await outbox.text_id(db, "2. 乙事")
            for part, tid in ((0, first), (1, second)):
                await db.execute(
                    "INSERT INTO outbox (kind, issue, chat_id, part, text_id, created_at,"
                    " status, message_id) VALUES ('issue', '2025-02-14', -7, ?, ?, 0, 'sent', ?)",
                    [part, tid, 10 + part],
                )
        found = await post_links(archive, [LONG])
        assert [found.item(LONG, n) for n in (1, 2)] == [
            Link("https://t.me/pub/10", "t.me/pub/10"),
            Link("https://t.me/pub/11", "t.me/pub/11"),
        ]
        # A correction re-split the issue: message 10 now holds both items, 11 a note.
        async with db.transaction():
            whole = await outbox.text_id(db, "<b>2025-02-14 · T</b>\n\n1. 甲事\n\n2. 乙事")
            note = await outbox.text_id(db, "<i>（已并入上面的消息）</i>")
            for message_id, tid, status in ((10, whole, "done"), (11, note, "done")):
                await db.execute(
                    "INSERT INTO edits (chat_id, message_id, issue, part, revision, base_id,"
                    " text_id, status, created_at) VALUES (-7, ?, '2025-02-14', ?, 2, ?, ?, ?, 0)",
                    [message_id, message_id - 10, tid, tid, status],
                )
        found = await post_links(archive, [LONG])
        assert found.item(LONG, 2) == Link("https://t.me/pub/10", "t.me/pub/10")
        assert found.issue(LONG) == Link("https://t.me/pub/10", "t.me/pub/10")
    finally:
        await archive.close()
