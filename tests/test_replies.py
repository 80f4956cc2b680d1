"""Reply decisions, called directly on a temporary database: no Telegram, no HTTP. Every
command and its bad arguments; the Telegram-only facts (group administrator, channel
lookup) are given as the callables the handlers would pass."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot import replies
from bot.config import Delivery
from bot.core import buttons
from bot.db import chats
from bot.db.archive import Archive
from bot.db.chats import ChatInfo, Status
from bot.replies import ChannelFacts, Ctx, Reply

from .conftest import BUNDLED

USER = ChatInfo(5, "private", "Ada")
GROUP = ChatInfo(-100, "supergroup", "Team")
CHANNEL = ChatInfo(-1001, "channel", "News", "newsroom")
DELIVERY = Delivery(times=(dt.time(8, 30),), timezone="Asia/Shanghai")


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    a = await Archive.open(tmp_path / "r.sqlite3")
    await a.sync(BUNDLED)
    yield a
    await a.close()


def ctx(archive: Archive, lang: str = "zh", **kw: object) -> Ctx:
    kw.setdefault("chat", USER)
    kw.setdefault("user_id", USER.id)
    return Ctx(archive, lang, dt.date(2025, 2, 20), "briefbot", delivery=DELIVERY, **kw)  # type: ignore[arg-type]


def text(reply: Reply) -> str:
    return "\n".join(reply.messages)


async def _no() -> bool:
    return False


# -- archive commands ---------------------------------------------------------------------


async def test_latest_and_dates(archive: Archive) -> None:
    latest = await replies.latest(ctx(archive))
    assert "2025.02.14" in text(latest) or "2025-02-14" in text(latest)
    assert [b.data for row in latest.keyboard for b in row] == ["i:2025-02-10"]
    same = await replies.by_date(ctx(archive), "2月14日")
    assert same.messages == latest.messages
    also = await replies.by_date(ctx(archive), "latest")
    assert also.messages == latest.messages


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("arg", ["2025-13-01", "明天的后天", "²", "9" * 5000, "9999-12-32"])
async def test_bad_dates_answer_in_the_chats_language(
    archive: Archive, lang: str, arg: str
) -> None:
    reply = await replies.by_date(ctx(archive, lang), arg)
    body = text(reply)
    assert len(body) < 1000
    if lang == "zh":
        assert "看不懂" in body and " or " not in body and "the most recent" not in body
    else:
        assert "Cannot read" in body and "最近" not in body


async def test_no_issue_offers_neighbours(archive: Archive) -> None:
    reply = await replies.by_date(ctx(archive), "2025-02-12")
    assert "2025-02-12" in text(reply)
    assert [b.data for row in reply.keyboard for b in row] == ["i:2025-02-10", "i:2025-02-14"]


async def test_find_pages_and_bad_queries(archive: Archive) -> None:
    reply = await replies.find(ctx(archive), "小米")
    assert "小米" in text(reply)
    assert "用法" in text(await replies.find(ctx(archive), "   "))
    none = await replies.find(ctx(archive), "绝对不会出现的词组")
    assert "没有找到" in text(none)


@pytest.mark.parametrize("arg", ["", "2025-02", "2025年2月", "9999-12", "2025-13", "²", "x" * 300])
async def test_month_list_never_fails(archive: Archive, arg: str) -> None:
    reply = await replies.month_list(ctx(archive), arg)
    assert reply.messages


# -- buttons ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        buttons.OpenIssue(dt.date(2025, 2, 14)),
        buttons.OpenMonth(2025, 2),
        buttons.FindPage("小米", 5),
        buttons.FindPage("很长的查询" * 10, 10),
    ],
)
def test_button_codec_round_trips(action: buttons.Action) -> None:
    data = buttons.encode(action)
    assert 1 <= len(data.encode()) <= buttons.MAX_BYTES
    assert buttons.decode(data) == action


@pytest.mark.parametrize(
    "data",
    [
        "",
        "x",
        "i:",
        "i:2025-02-30",
        "l:2025-13",
        "l:²",
        "f:²:小米",
        "f:18446744073709551616:小米",
        "f:" + "9" * 5000 + ":q",
        "F:0:unknown-key",
        "f:5",
        "zz:1:2",
    ],
)
async def test_stale_or_forged_buttons_get_a_notice(archive: Archive, data: str) -> None:
    reply = await replies.button(ctx(archive), data)
    assert reply.notice and not reply.messages


async def test_buttons_open_what_they_say(archive: Archive) -> None:
    reply = await replies.button(ctx(archive), "i:2025-02-10")
    assert "2025" in text(reply)
    page = await replies.button(ctx(archive), buttons.encode(buttons.FindPage("小米", 0)))
    assert page.edit and "小米" in text(page)


# -- inline -------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["", "²", "2^64", "9" * 5000, "-1", "20"])
async def test_inline_offsets_are_harmless(archive: Archive, offset: str) -> None:
    answer = await replies.inline(ctx(archive), "小米", offset)
    assert isinstance(answer.results, tuple)


# -- subscriptions ------------------------------------------------------------------------


async def test_start_and_stop(archive: Archive) -> None:
    c = ctx(archive)
    assert "你好" in text(await replies.start(c))
    assert (await chats.get(archive.db, USER.id)).status is Status.ACTIVE  # type: ignore[union-attr]
    assert "已经订阅" in text(await replies.start(c))
    assert "已退订" in text(await replies.stop(c))
    assert "没有订阅" in text(await replies.stop(c))
    deep = await replies.start(c, "2025-02-14")
    assert deep.messages == (await replies.by_date(c, "2025-02-14")).messages


async def test_group_members_who_are_not_admins_cannot_change_anything(archive: Archive) -> None:
    c = ctx(archive, chat=GROUP, can_manage=_no)
    for reply in (
        await replies.start(c),
        await replies.stop(c),
        await replies.delivery_time(c, "09:00"),
        await replies.delivery_time(c, "banana"),
    ):
        assert "管理员" in text(reply)
    assert await chats.get(archive.db, GROUP.id) is None
    shown = await replies.delivery_time(c, "")  # looking is allowed
    assert "08:30" in text(shown)


@pytest.mark.parametrize("arg", ["25:00", "8", "banana", "08:30:00", "²:00", "9" * 500])
async def test_time_usage(archive: Archive, arg: str) -> None:
    reply = await replies.delivery_time(ctx(archive), arg)
    assert "用法" in text(reply)


async def test_time_set_show_and_reset(archive: Archive) -> None:
    c = ctx(archive, "en")
    assert "09:00" in text(await replies.delivery_time(c, "09:00"))
    assert (await chats.get(archive.db, USER.id)).delivery_time == dt.time(9, 0)  # type: ignore[union-attr]
    assert "09:00" in text(await replies.delivery_time(c, ""))
    assert "08:30" in text(await replies.delivery_time(c, "default"))


async def test_watch_and_unwatch(archive: Archive) -> None:
    c = ctx(archive)
    assert "还没有" in text(await replies.watch(c, ""))
    assert "已关注" in text(await replies.watch(c, "小米  芯片"))
    assert "已经在关注" in text(await replies.watch(c, "小米 芯片"))
    assert "小米 芯片" in text(await replies.watch(c, ""))
    assert "搜索有问题" in text(await replies.watch(c, "2024 2025"))
    for i in range(9):
        await replies.watch(c, f"词{i}")
    assert "最多" in text(await replies.watch(c, "再一个"))
    assert "已取消" in text(await replies.unwatch(c, "小米 芯片"))
    assert "没有关注" in text(await replies.unwatch(c, "小米 芯片"))
    assert "用法" in text(await replies.unwatch(c, " "))


async def test_escaping_of_user_text(archive: Archive) -> None:
    reply = await replies.watch(ctx(archive), "<b>x</b>")
    assert "<b>x</b>" not in text(reply) and "&lt;b&gt;" in text(reply)


# -- channels -----------------------------------------------------------------------------


def lookup(facts: ChannelFacts | None) -> replies.ChannelLookup:
    async def find(ref: str | int) -> ChannelFacts | None:
        return facts

    return find


async def test_channel_rules(archive: Archive) -> None:
    good = lookup(ChannelFacts(CHANNEL, True, True))
    c = ctx(archive)
    assert "请在和我的私聊" in text(await replies.channel(ctx(archive, chat=GROUP), "@x", good))
    assert "还没有" in text(await replies.channel(c, "", good))
    for bad in ("newsroom", "²", "-" + "9" * 40):
        assert "用法" in text(await replies.channel(c, bad, good))
    assert "找不到" in text(await replies.channel(c, "@x", lookup(None)))
    assert "我还不是" in text(
        await replies.channel(c, "@x", lookup(ChannelFacts(CHANNEL, False, True)))
    )
    assert "只有" in text(
        await replies.channel(c, "@x", lookup(ChannelFacts(CHANNEL, True, False)))
    )
    assert "已订阅" in text(await replies.channel(c, "@newsroom", good))
    assert "已经订阅过" in text(await replies.channel(c, "@newsroom", good))
    assert "News" in text(await replies.channel(c, "", good))
    assert "已退订" in text(await replies.channel(c, "@newsroom off", good))
    assert "本来就没有" in text(await replies.channel(c, "@newsroom off", good))
    assert "需要 Telegram" in text(await replies.channel(c, "@newsroom", None))


# -- admin commands -----------------------------------------------------------------------


async def test_admin_commands_need_an_admin(archive: Archive) -> None:
    c = ctx(archive)
    assert "管理员" in text(await replies.stats(c))
    assert "管理员" in text(await replies.broadcast(c, "", None))


async def test_stats_from_the_local_database(archive: Archive) -> None:
    c = ctx(archive, is_admin=True)
    await replies.start(c)
    body = text(await replies.stats(c))
    assert body.startswith("<pre>") and "private / active: 1" in body


async def test_broadcast_without_an_engine_needs_telegram(archive: Archive) -> None:
    reply = await replies.broadcast(ctx(archive, "en", is_admin=True), "", None)
    assert "needs Telegram" in text(reply)


@pytest.mark.parametrize(
    "query", ["a b c d e f g h i j k l m n o p q r s t u v", "小米 2024 2025", "小米 2025-13", "x" * 300]
)
async def test_query_problems_are_told_in_the_chats_language(archive: Archive, query: str) -> None:
    zh = text(await replies.find(ctx(archive, "zh"), query))
    en = text(await replies.find(ctx(archive, "en"), query))
    assert "搜索有问题" in zh and not any(w in zh for w in ("the ", "query", "term", "filter"))
    assert en.startswith("Cannot search for that") and "查询" not in en
    assert "搜索有问题" in text(await replies.watch(ctx(archive, "zh"), query))
