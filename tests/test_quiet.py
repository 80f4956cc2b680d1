"""/quiet: a chat's deliveries go out with disable_notification, through the fake Bot API;
replies to commands never do."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.config import Delivery
from bot.core import quiethours
from bot.core.pacing import Pending
from bot.db import chats
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.delivery.engine import DeliveryEngine
from fakebot import FakeBotAPI
from fakebot.state import SentMessage

from .botkit import BotUnderTest, make_config

LOUD, QUIET, GROUP, ADMIN = 5201, 5202, -100601, 42


@pytest.fixture
async def bot(tmp_path: Path, bundled: Path, open_api: FakeBotAPI) -> AsyncIterator[BotUnderTest]:
    config = make_config(tmp_path, bundled, open_api, telegram={"throttle": {"messages": 1000}})
    async with BotUnderTest(open_api, config) as b:
        yield b


async def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def _silent(m: SentMessage) -> bool:
    # PTB sends form fields ("true"), a JSON client sends true: the fake keeps either.
    return str(m.params.get("disable_notification")).lower() == "true"


def _issue_messages(api: FakeBotAPI, chat: int) -> list[SentMessage]:
    return [m for m in api.messages_to(chat) if m.text.startswith("2025-02-10 · ")]


async def test_quiet_chats_get_deliveries_without_a_notification(bot: BotUnderTest) -> None:
    for chat in (LOUD, QUIET):
        await bot.say(chat, "/start")
    (shown,) = await bot.say(QUIET, "/quiet")
    assert "有提示音" in shown.text
    (done,) = await bot.say(QUIET, "/quiet on")
    assert "静音" in done.text
    assert not _silent(done)  # a reply is never silent
    (shown,) = await bot.say(QUIET, "/quiet", language_code="en")
    assert "silently" in shown.text
    await bot.say(ADMIN, "/broadcast 2025-02-10")
    await eventually(
        lambda: bool(_issue_messages(bot.api, LOUD) and _issue_messages(bot.api, QUIET))
    )
    assert all(_silent(m) for m in _issue_messages(bot.api, QUIET))
    assert not any(_silent(m) for m in _issue_messages(bot.api, LOUD))


async def test_quiet_off_again_and_bad_arguments(bot: BotUnderTest) -> None:
    db = bot.app.bot_data.services.db
    await bot.say(QUIET, "/quiet on")
    assert await chats.is_quiet(db, QUIET)
    (off,) = await bot.say(QUIET, "/quiet off")
    assert "正常提醒" in off.text and not await chats.is_quiet(db, QUIET)
    (bad,) = await bot.say(QUIET, "/quiet loud")
    assert "用法" in bad.text


async def test_only_group_admins_change_quiet(bot: BotUnderTest) -> None:
    bot.api.set_member(GROUP, 7, "member")
    (refused,) = await bot.say(GROUP, "/quiet on", user_id=7, chat_type="supergroup")
    assert "管理员" in refused.text
    assert not await chats.is_quiet(bot.app.bot_data.services.db, GROUP)
    (shown,) = await bot.say(GROUP, "/quiet", user_id=7, chat_type="supergroup")
    assert "有提示音" in shown.text  # anyone may look


def test_pending_rows_are_loud_unless_told() -> None:
    assert Pending(1, 2, 3, 0, 0.0, None).silent is False


# -- quiet hours -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "window", "held"),
    [
        ("23:00", ("23:00", "07:00"), True),  # the start is inside
        ("03:15", ("23:00", "07:00"), True),
        ("06:59", ("23:00", "07:00"), True),
        ("07:00", ("23:00", "07:00"), False),  # the end is not
        ("12:00", ("23:00", "07:00"), False),
        ("13:00", ("12:00", "14:00"), True),  # a window within one day
        ("14:00", ("12:00", "14:00"), False),
        ("11:59", ("12:00", "14:00"), False),
    ],
)
def test_quiet_hours_window(now: str, window: tuple[str, str], held: bool) -> None:
    t = dt.time.fromisoformat
    assert quiethours.inside(t(now), (t(window[0]), t(window[1]))) is held


async def test_deliveries_due_in_quiet_hours_go_out_when_they_end(
    tmp_path: Path, bundled: Path
) -> None:
    # 08:30 Shanghai is due inside quiet hours 08:00-09:00: held until 09:00, then sent.
    config = Delivery(times=(dt.time(8, 30),), quiet_hours=(dt.time(8, 0), dt.time(9, 0)))
    archive = await Archive.open(tmp_path / "q.sqlite3")
    try:
        await archive.sync(bundled)
        subscribed = dt.datetime(2025, 2, 14, 0, 10, tzinfo=dt.UTC)  # 08:10 Shanghai
        await chats.subscribe(archive.db, ChatInfo(1, "private"), now=subscribed)
        engine = DeliveryEngine(archive, _NoSend(), config)
        at = lambda hhmm: dt.datetime.fromisoformat(f"2025-02-14T{hhmm}+08:00")  # noqa: E731
        assert await engine.tick(at("08:31")) is None  # due, but quiet
        assert await engine.tick(at("08:59")) is None
        assert await engine.tick(at("09:00")) is not None  # the window ended: sent now
        rows = await archive.db.rows("SELECT chat_id, issue FROM outbox WHERE part = 0")
        assert [tuple(r) for r in rows] == [(1, "2025-02-14")]
        assert await engine.tick(at("09:01")) is None  # once
        # Without quiet hours the same slot is handled at 08:30 itself.
        loud = DeliveryEngine(archive, _NoSend(), Delivery(times=(dt.time(8, 30),)))
        await chats.subscribe(archive.db, ChatInfo(2, "private"), now=subscribed)
        assert await loud.tick(at("08:31")) is not None
    finally:
        await archive.close()


class _NoSend:
    async def send_html(self, chat_id: int, html: str, **kw: object) -> int:
        raise AssertionError("the planner test does not send")

    def redact(self, text: str) -> str:
        return text
