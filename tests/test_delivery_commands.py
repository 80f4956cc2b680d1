"""Delivery as users and admins drive it, end to end through the fake Bot API server:
/time, /watch, /unwatch, /channel, /broadcast, /stats, being blocked, and the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.db import chats
from bot.db.archive import Archive
from fakebot import FakeBotAPI, fake_bot_api
from fakebot.updates import my_chat_member_update

from .botkit import BotUnderTest, make_config

USER, ADMIN, GROUP, CHANNEL = 5101, 42, -100555, -100999


@pytest.fixture
async def bot(tmp_path: Path, bundled: Path, open_api: FakeBotAPI) -> AsyncIterator[BotUnderTest]:
    # A generous flood limit: these tests send many commands from one user on purpose.
    config = make_config(tmp_path, bundled, open_api, telegram={"throttle": {"messages": 1000}})
    async with BotUnderTest(open_api, config) as b:
        yield b


async def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_time(bot: BotUnderTest) -> None:
    (shown,) = await bot.say(USER, "/time")
    assert "08:30" in shown.text and "Asia/Shanghai" in shown.text
    (done,) = await bot.say(USER, "/time 7:45")
    assert "07:45" in done.text
    (shown,) = await bot.say(USER, "/time")
    assert "07:45" in shown.text
    (bad,) = await bot.say(USER, "/time 25:00")
    assert "用法" in bad.text
    bot.api.set_member(GROUP, 7, "member")
    (refused,) = await bot.say(GROUP, "/time 09:00", user_id=7, chat_type="supergroup")
    assert "管理员" in refused.text


async def test_watch_and_unwatch(bot: BotUnderTest) -> None:
    (added,) = await bot.say(USER, "/watch 小米  汽车")
    assert "小米 汽车" in added.text
    (again,) = await bot.say(USER, "/watch 小米 汽车")
    assert "已经在关注" in again.text
    for n in range(9):
        await bot.say(USER, f"/watch 词{n}")
    (limit,) = await bot.say(USER, "/watch 再多一个")
    assert "最多关注 10 个" in limit.text
    (listed,) = await bot.say(USER, "/watch")
    assert listed.text.count("•") == 10
    (removed,) = await bot.say(USER, "/unwatch 小米 汽车")
    assert "已取消" in removed.text
    (missing,) = await bot.say(USER, "/unwatch 小米 汽车")
    assert "没有关注" in missing.text
    (bad,) = await bot.say(USER, "/watch " + "x" * 300)
    assert "太长" in bad.text and "too long" not in bad.text  # in the chat's language


async def test_channel_needs_both_admins(bot: BotUnderTest) -> None:
    bot.api.add_chat(CHANNEL, "channel", title="科技频道", username="techchan")
    (group,) = await bot.say(GROUP, "/channel @techchan", chat_type="supergroup")
    assert "私聊" in group.text
    (missing,) = await bot.say(USER, "/channel @nosuchchan")
    assert "找不到" in missing.text
    bot.api.set_member(CHANNEL, USER, "administrator")
    (not_bot,) = await bot.say(USER, "/channel @techchan")
    assert "我还不是" in not_bot.text
    bot.api.set_member(CHANNEL, bot.api.bot_id, "administrator")
    bot.api.set_member(CHANNEL, USER + 1, "member")
    (not_user,) = await bot.say(USER + 1, "/channel @techchan")
    assert "只有" in not_user.text
    (on,) = await bot.say(USER, "/channel @techchan")
    assert "已订阅" in on.text
    (listed,) = await bot.say(USER, "/channel")
    assert "科技频道" in listed.text and "✅" in listed.text
    (off,) = await bot.say(USER, "/channel @techchan off")
    assert "已退订" in off.text
    record = await chats.get(bot.app.bot_data.services.db, CHANNEL)
    assert record is not None and not record.subscribed


async def test_broadcast_is_for_admins_and_reaches_subscribers(bot: BotUnderTest) -> None:
    for cid in (USER, USER + 1):
        await bot.say(cid, "/start")
    (refused,) = await bot.say(USER, "/broadcast")
    assert "管理员" in refused.text
    (started,) = await bot.say(ADMIN, "/broadcast 2025-02-10")
    assert "2025-02-10" in started.text and "2 个聊天" in started.text
    for cid in (USER, USER + 1):
        await eventually(
            lambda c=cid: any(m.text.startswith("2025-02-10 · ") for m in bot.api.messages_to(c))
        )
    (nothing,) = await bot.say(ADMIN, "/broadcast 2025-02-10")
    assert "没有要推送" in nothing.text
    await eventually(lambda: any("Broadcast #" in m.text for m in bot.api.messages_to(ADMIN)))
    assert any("Broadcast #" in m.text and "2 sent" in m.text for m in bot.api.messages_to(ADMIN))
    (stats,) = await bot.say(ADMIN, "/stats")
    assert "private / active: 2" in stats.text and "sent 2" in stats.text
    (no_stats,) = await bot.say(USER, "/stats")
    assert "管理员" in no_stats.text


async def test_blocking_the_bot_makes_the_chat_inactive(bot: BotUnderTest) -> None:
    await bot.say(USER, "/start")
    await bot.feed(my_chat_member_update(USER, "private", "member", "kicked"))
    record = await chats.get(bot.app.bot_data.services.db, USER)
    assert record is not None and record.status.value == "blocked"


def test_cli_broadcast_and_subscribers(
    tmp_path: Path,
    bundled: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "987654321:AAH" + "x7Yq" * 8
    with fake_bot_api(token=token) as api:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"content:\n  dir: {bundled}\nstorage:\n  path: {tmp_path / 'db.sqlite3'}\n"
            f"telegram:\n  api_base_url: {api.url}\n",
            encoding="utf-8",
        )

        async def seed() -> None:
            store = await Archive.open(tmp_path / "db.sqlite3")
            await store.sync(bundled)
            for cid in range(1, 21):
                await chats.subscribe(store.db, chats.ChatInfo(cid, "private", f"u{cid}"))
            await store.close()

        asyncio.run(seed())
        assert main(["broadcast", "--dry-run", "--config", str(config)]) == 0
        assert "would post 20 messages to 20 chats" in capsys.readouterr().out
        assert not api.sent
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
        assert main(["broadcast", "--config", str(config)]) == 0
        out, err = capsys.readouterr()
        assert "20 sent, 0 failed" in out and "20/20" in err
        assert sorted(m.chat_id for m in api.sent) == list(range(1, 21))
        assert main(["subscribers", "--json", "--config", str(config)]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert len(listed) == 20 and {c["last_issue"] for c in listed} == {"2025-02-14"}
