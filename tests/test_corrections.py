"""Corrections edited in place: a delivered issue that changes upstream is edited in every
chat and channel (once, after it settles, never re-sent), renumbering, a heading date
moved, more and fewer parts, a message Telegram refuses to edit, an issue removed
upstream, a force-push, and an unchanged re-render that edits nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from telegram import Bot

from bot.db import edits
from bot.delivery import corrections
from bot.delivery.engine import stats
from bot.replies import format_stats
from fakebot import FakeBotAPI, fake_bot_api
from fakebot.upstream import Upstream, issue, month

from .sourcekit import SETTLE, World

FEB = "docs/2025/newsflash-202502.md"
MAR = "docs/2025/newsflash-202503.md"
OLD = month(issue("2025.02.28", "二月最后一期"))
FIRST = month(issue("2025.03.01", "小米发布新芯片", "英伟达财报", "苹果新品"))
CHATS = [(1, "private"), (2, "private"), (-1001, "channel")]


@pytest.fixture
def api() -> FakeBotAPI:
    with fake_bot_api(rate_limits=False) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def bot(api: FakeBotAPI) -> AsyncIterator[Bot]:
    async with api.bot() as b:
        yield b


@pytest.fixture
async def world(tmp_path: Path, bot: Bot) -> AsyncIterator[World]:
    """Three chats (one in English, one channel) that received the 2025-03-01 issue."""
    async with World(tmp_path, Upstream(tmp_path / "up.git"), bot) as w:
        await w.push({FEB: OLD})
        await w.seed(*[(c, kind, "2025-02-28") for c, kind in CHATS])
        async with w.db.transaction() as db:
            await db.execute("UPDATE chats SET language = 'en' WHERE id = 2")
        await w.push({MAR: FIRST})
        await w.tick("2025-03-02 00:31")
        await w.deliver()
        yield w


def shown(api: FakeBotAPI, chat: int) -> list[str]:
    """What each message the bot sent to the chat shows now, in order."""
    out = []
    for m in api.messages_to(chat):
        if m.method == "sendMessage" and m.message_id is not None:
            current = api.message(chat, m.message_id)
            out.append(current["text"] if current else "")
    return out


def sends(api: FakeBotAPI) -> int:
    return len(api.calls("sendMessage"))


async def correct(world: World, files: dict[str, str | None], **kw: bool) -> None:
    """Push, wait out the settle time, tick, deliver."""
    world.at("2025-03-02 02:00")
    await world.push(files, **kw)
    world.now += dt.timedelta(seconds=SETTLE + 1)
    await world.tick()
    await world.deliver()


async def test_a_correction_is_edited_in_place_in_every_chat_and_not_resent(
    world: World, api: FakeBotAPI
) -> None:
    before = sends(api)
    world.at("2025-03-02 02:00")
    await world.push(
        {MAR: month(issue("2025.03.01", "小米发布新芯片", "英伟达财报超预期", "苹果新品"))}
    )
    world.now += dt.timedelta(seconds=SETTLE - 60)
    await world.tick()
    assert await world.db.value("SELECT count(*) FROM edits") == 0  # not settled yet
    world.now += dt.timedelta(seconds=61)
    await world.tick()
    await world.deliver()
    for chat, mark in [(1, "✏️ 已更正"), (2, "✏️ corrected"), (-1001, "✏️ 已更正")]:
        (text,) = shown(api, chat)
        assert "英伟达财报超预期" in text and text.endswith(mark)
    assert sends(api) == before  # edited, never re-sent
    assert len(api.calls("editMessageText")) == 3
    # Exactly once: planning again (the next tick, or after a restart) adds nothing.
    await world.tick()
    assert await corrections.plan(world.archive, world.now.timestamp() + 10**6, SETTLE) == 0
    assert await world.db.value("SELECT count(*) FROM edits") == 3


async def test_an_unchanged_re_render_edits_nothing(world: World, api: FakeBotAPI) -> None:
    # Same issue, another issue of the month file changed: 2025-03-01 is not touched.
    await correct(world, {MAR: FIRST + "\n" + month(issue("2025.03.02", "次日"))})
    assert api.calls("editMessageText") == []


async def test_renumbering_is_corrected(world: World, api: FakeBotAPI) -> None:
    await correct(world, {MAR: month(issue("2025.03.01", "英伟达财报", "苹果新品"))})
    (text,) = shown(api, 1)
    assert "1. 英伟达财报" in text and "2. 苹果新品" in text and "小米" not in text


async def test_a_moved_heading_date_edits_the_old_messages_and_is_not_delivered(
    world: World, api: FakeBotAPI
) -> None:
    before = sends(api)
    moved = month(issue("2025.03.02", "小米发布新芯片", "英伟达财报", "苹果新品"))
    world.at("2025-03-02 02:00")
    result = await world.push({MAR: moved})
    assert result.notes == [
        "✏️ issue 2025-03-01 moved to 2025-03-02: its messages will be edited,"
        " it is not delivered again"
    ]
    await world.tick("2025-03-03 00:31")  # the next slot: 2025-03-02 is not news
    await world.deliver()
    assert sends(api) == before
    for chat in (1, -1001):
        (text,) = shown(api, chat)
        assert "2025年03月02日" in text and "小米发布新芯片" in text
    assert [d.isoformat() for d in await world.archive.issue_dates()] == [
        "2025-02-28",
        "2025-03-02",
    ]


def _long(n: int, word: str) -> str:
    return f"{word}第{n}条：" + "业内人士认为这一变化影响深远，" * 12


async def test_more_parts_edit_the_old_and_send_the_missing_fewer_leave_no_stale_text(
    world: World, api: FakeBotAPI
) -> None:
    longer = month(issue("2025.03.01", *[_long(n, "长") for n in range(1, 25)]))
    before = sends(api)
    await correct(world, {MAR: longer})
    parts = shown(api, 1)
    assert len(parts) >= 2 and sends(api) - before == 3 * (len(parts) - 1)
    assert parts[0].endswith("✏️ 已更正") and "长第1条" in parts[0]
    assert "长第24条" in parts[-1]

    world.at("2025-03-02 04:00")
    await world.push({MAR: month(issue("2025.03.01", "短了"))})
    world.now += dt.timedelta(seconds=SETTLE + 1)
    await world.tick()
    await world.deliver()
    after = shown(api, 2)
    assert "短了" in after[0]
    assert after[1:] == ["(merged into the message above)"] * (len(after) - 1)
    assert all(t == "（已并入上面的消息）" for t in shown(api, 1)[1:])


async def test_a_message_telegram_refuses_to_edit_is_counted_not_resent(
    world: World, api: FakeBotAPI
) -> None:
    before = sends(api)
    api.fail_next("editMessageText", 400, "Bad Request: message to edit not found")
    api.fail_next("editMessageText", 400, "Bad Request: message can't be edited")
    await correct(world, {MAR: month(issue("2025.03.01", "改一", "改二", "改三"))})
    counts = await edits.status_counts(world.db)
    assert counts == {"refused": 2, "done": 1}
    assert sends(api) == before
    assert "Corrections: done 1, refused 2" in format_stats(await stats(world.db))
    # The next correction does not ask Telegram again about the refused messages.
    calls = len(api.calls("editMessageText"))
    world.at("2025-03-02 05:00")
    await world.push({MAR: month(issue("2025.03.01", "再改"))})
    world.now += dt.timedelta(seconds=SETTLE + 1)
    await world.tick()
    await world.deliver()
    assert len(api.calls("editMessageText")) == calls + 1


async def test_an_issue_removed_upstream_keeps_its_messages_and_admins_are_told(
    world: World, api: FakeBotAPI
) -> None:
    result = await world.push({MAR: None})
    assert result.notes == [
        "🗑 issue 2025-03-01 was removed upstream after delivery: dropped from the index,"
        " its 3 messages are left as they are"
    ]
    assert await world.archive.issue(dt.date(2025, 3, 1)) is None
    await world.tick("2025-03-03 00:31")
    await world.deliver()
    assert api.calls("editMessageText") == [] and "小米发布新芯片" in shown(api, 1)[0]


async def test_a_force_push_is_followed_and_corrects(world: World, api: FakeBotAPI) -> None:
    rewritten = {FEB: OLD, MAR: month(issue("2025.03.01", "小米发布新芯片", "英伟达财报", "谷歌"))}
    await correct(world, rewritten, force=True)
    assert all("谷歌" in shown(api, chat)[0] for chat, _ in CHATS)


async def test_planned_corrections_survive_a_restart_and_go_out_once(
    world: World, api: FakeBotAPI, bot: Bot
) -> None:
    from bot.delivery.engine import DeliveryEngine
    from bot.telegram.transport import PtbTransport

    from .sourcekit import FAST

    world.at("2025-03-02 02:00")
    await world.push({MAR: month(issue("2025.03.01", "小米发布新芯片", "英伟达", "苹果新品"))})
    world.now += dt.timedelta(seconds=SETTLE + 1)
    await world.tick()  # planned, then the process dies before sending any of it
    assert await world.db.value("SELECT count(*) FROM edits WHERE status = 'pending'") == 3
    world.engine = DeliveryEngine(  # a new process on the same database
        world.archive,
        PtbTransport(bot),
        world.config.delivery,
        limits=FAST,
        clock=lambda: world.now,
        settle_seconds=SETTLE,
        poll_seconds=0.05,
    )
    await world.tick()  # planning again adds nothing
    await world.deliver()
    assert len(api.calls("editMessageText")) == 3
    assert await edits.status_counts(world.db) == {"done": 3}
