"""Forum topics, end to end through the fake Bot API: /start in a topic subscribes that
topic, deliveries and watch alerts land in their topic, a closed or deleted topic is
deactivated on its own, and the rest of the group keeps working."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from telegram import Bot
from telegram.error import BadRequest

from bot.config import Config, Delivery, parse_config
from bot.db import chats, topics
from bot.db.archive import Archive
from bot.db.chats import ChatInfo, Status
from bot.db.database import Database
from bot.db.schema import MIGRATIONS
from bot.db.topics import TopicStatus
from bot.delivery import audience
from bot.delivery.engine import DeliveryEngine, limits_for
from bot.delivery.transport import Failure
from bot.telegram.fastsend import classify_answer
from bot.telegram.transport import classify
from fakebot import FakeBotAPI, fake_bot_api, my_chat_member_update
from fakebot.state import SentMessage
from fakebot.upstream import Upstream, issue, month

from .botkit import BotUnderTest, make_config
from .conftest import REPO
from .sourcekit import SETTLE, World

FORUM, ADMIN, USER = -100700, 42, 1001  # USER: who speaks in groups (fakebot's default)
ISSUE = "2025-02-10"


def _config(tmp: Path, content: Path, api: FakeBotAPI) -> Config:
    return make_config(tmp, content, api, telegram={"throttle": {"messages": 1000}})


@pytest.fixture(autouse=True)
def fast_groups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A group may get 20 messages a minute, all its topics together (one lane per chat),
    # which the sender keeps to; these tests send three subscriptions' issues to one
    # forum, and the fake (without flood limits) does not count.
    fast = dataclasses.replace(
        limits_for(parse_config({}, tmp_path).delivery), group_per_minute=6000, group_burst=20
    )
    monkeypatch.setattr("bot.telegram.app.limits_for", lambda _: fast)


@pytest.fixture
def config(tmp_path: Path, bundled: Path, open_api: FakeBotAPI) -> Config:
    open_api.set_member(FORUM, USER, "administrator")  # /start and /stop need one
    return _config(tmp_path, bundled, open_api)


@pytest.fixture
async def bot(config: Config, open_api: FakeBotAPI) -> AsyncIterator[BotUnderTest]:
    async with BotUnderTest(open_api, config) as b:
        yield b


async def eventually(check: Callable[[], bool], timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def db_of(bot: BotUnderTest) -> Database:
    services = bot.app.bot_data.services
    assert services is not None
    return services.db


def issue_parts(api: FakeBotAPI, date: str = ISSUE) -> Counter[int | None]:
    """How many messages of the issue went to each thread of the forum (None: General)."""
    return Counter(
        m.thread_id
        for m in api.messages_to(FORUM)
        if m.method == "sendMessage" and m.text.startswith(f"{date} · ")
    )


async def n_parts(bot: BotUnderTest, date: str = ISSUE) -> int:
    rows = await db_of(bot).rows(
        "SELECT count(DISTINCT part) FROM outbox WHERE kind = 'issue' AND issue = ?", [date]
    )
    return int(rows[0][0])


async def in_topic(bot: BotUnderTest, thread: int | None, text: str) -> list[SentMessage]:
    """Say ``text`` in the forum (a topic, or General with None); the bot's answers."""
    kw: dict[str, Any] = {"thread_id": thread} if thread else {"is_forum": True}
    return await bot.say(FORUM, text, chat_type="supergroup", **kw)


async def broadcast(bot: BotUnderTest, date: str = ISSUE) -> str:
    # The answer, and maybe an admin report of a broadcast that just ended.
    return "\n".join(m.text for m in await bot.say(ADMIN, f"/broadcast {date}"))


async def settled(bot: BotUnderTest) -> None:
    """Nothing of the outbox is pending any more."""
    db = db_of(bot)
    for _ in range(1000):
        if not await db.value("SELECT count(*) FROM outbox WHERE status = 'pending'"):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the outbox did not drain")


# -- the fake answers message_thread_id as Telegram does ---------------------------------


async def test_fake_topics_answer_as_telegram(open_api: FakeBotAPI) -> None:
    api = open_api
    a, b = api.create_topic(FORUM, "A"), api.create_topic(FORUM, "B")
    async with Bot(api.token, base_url=api.base_url) as tg:
        sent = await tg.send_message(FORUM, "hi", message_thread_id=a)
        assert (sent.message_thread_id, sent.is_topic_message) == (a, True)
        general = await tg.send_message(FORUM, "general")
        assert general.message_thread_id is None and not general.is_topic_message
        api.close_topic(FORUM, a)
        with pytest.raises(BadRequest, match="Topic_closed"):
            await tg.send_message(FORUM, "x", message_thread_id=a)
        for thread in (999, 1):  # unknown; the General topic is never addressed by id
            with pytest.raises(BadRequest, match="Message thread not found"):
                await tg.send_message(FORUM, "x", message_thread_id=thread)
        for chat in (-100701, 5):  # a supergroup without topics; a private chat
            with pytest.raises(BadRequest, match="Message thread not found"):
                await tg.send_message(chat, "x", message_thread_id=b)
        in_b = await tg.send_message(FORUM, "in b", message_thread_id=b)
        await tg.delete_forum_topic(FORUM, b)  # its messages go with it
        with pytest.raises(BadRequest, match="Message thread not found"):
            await tg.send_message(FORUM, "x", message_thread_id=b)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await tg.edit_message_text("new", chat_id=FORUM, message_id=in_b.message_id)
        with pytest.raises(BadRequest, match="Topic_id_invalid"):
            await tg.close_forum_topic(FORUM, b)
        await tg.reopen_forum_topic(FORUM, a)
        with pytest.raises(BadRequest, match="Topic_not_modified"):
            await tg.reopen_forum_topic(FORUM, a)
        created = await tg.create_forum_topic(FORUM, "C")
        assert api.topic_status(FORUM, created.message_thread_id) == "open"
        with pytest.raises(BadRequest, match="The chat is not a forum"):
            await tg.create_forum_topic(-100701, "C")


@pytest.mark.parametrize(
    ("description", "failure"),
    [
        ("Bad Request: TOPIC_CLOSED", Failure.TOPIC_GONE),
        ("Bad Request: message thread not found", Failure.TOPIC_GONE),
        ("Bad Request: chat not found", Failure.GONE),
        ("Bad Request: can't parse entities", Failure.REJECTED),
    ],
)
def test_topic_errors_are_their_own_failure(description: str, failure: Failure) -> None:
    body = f'{{"ok":false,"error_code":400,"description":"{description}"}}'.encode()
    assert classify_answer(400, body).failure is failure
    # PTB's BadRequest holds the description tidied ("Topic_closed"), as the fake's path.
    tidy = description.removeprefix("Bad Request: ").capitalize()
    assert classify(BadRequest(tidy)).failure is failure


# -- subscribing topics ------------------------------------------------------------------


async def test_each_topic_and_general_get_the_issue_once_in_their_thread(
    bot: BotUnderTest,
) -> None:
    api = bot.api
    a, b = api.create_topic(FORUM, "brief"), api.create_topic(FORUM, "alerts")
    (welcome,) = await in_topic(bot, a, "/start")
    assert welcome.thread_id == a and "这个话题" in welcome.text  # the reply is in its topic
    (again,) = await in_topic(bot, a, "/start")
    assert again.thread_id == a and "已经订阅" in again.text
    (welcome_b,) = await in_topic(bot, b, "/start")
    assert welcome_b.thread_id == b
    (welcome_general,) = await in_topic(bot, None, "/start")
    assert welcome_general.thread_id is None and "这个话题" not in welcome_general.text
    db = db_of(bot)
    assert await topics.list_topics(db, FORUM) == [
        (a, TopicStatus.ACTIVE),
        (b, TopicStatus.ACTIVE),
    ]
    record = await chats.get(db, FORUM)
    assert record is not None and record.status is Status.ACTIVE  # General, as before

    assert "3 个聊天" in await broadcast(bot)  # three subscribers: two topics and the group
    await settled(bot)
    parts = await n_parts(bot)
    assert issue_parts(api) == {a: parts, b: parts, None: parts}

    # /stop in A stops only A; a second broadcast reaches B and General.
    (stopped,) = await in_topic(bot, a, "/stop")
    assert stopped.thread_id == a and "本话题已退订" in stopped.text
    (not_again,) = await in_topic(bot, a, "/stop")
    assert "没有订阅" in not_again.text
    await broadcast(bot, "2025-02-14")
    await settled(bot)
    later = await n_parts(bot, "2025-02-14")
    assert issue_parts(api, "2025-02-14") == {b: later, None: later}
    assert await topics.status(db, FORUM, b) is TopicStatus.ACTIVE
    # Broadcasting the first issue again: A stopped, B and General have it; nothing to do.
    assert "没有要推送" in await broadcast(bot)
    await settled(bot)
    assert issue_parts(api) == {a: parts, b: parts, None: parts}


async def test_scheduled_ticks_deliver_to_topics_with_their_own_cursor(
    bot: BotUnderTest,
) -> None:
    api = bot.api
    a = api.create_topic(FORUM, "brief")
    db = db_of(bot)
    engine = bot.app.bot_data.services.engine  # type: ignore[union-attr]
    assert engine is not None
    subscribed = dt.datetime(2025, 2, 14, 0, 0, tzinfo=dt.UTC)  # 08:00 Shanghai
    await topics.subscribe(db, ChatInfo(FORUM, "supergroup"), a, now=subscribed)
    noon = dt.datetime(2025, 2, 14, 4, 0, tzinfo=dt.UTC)  # after the 09:00 slot
    assert await engine.tick(noon) is not None
    assert await engine.tick(noon) is None  # handled: once
    await settled(bot)
    parts = await n_parts(bot, "2025-02-14")
    assert issue_parts(api, "2025-02-14") == {a: parts}  # the newest only, in A
    rows = await db.rows("SELECT last_issue FROM topics WHERE thread_id = ?", [a])
    assert rows[0][0] == "2025-02-14"


async def test_watch_in_a_topic_sends_its_matches_there(bot: BotUnderTest) -> None:
    api = bot.api
    a, b = api.create_topic(FORUM, "brief"), api.create_topic(FORUM, "alerts")
    (added,) = await in_topic(bot, b, "/watch DeepSeek")
    assert added.thread_id == b and "DeepSeek" in added.text.replace("deepseek", "DeepSeek")
    (listed,) = await in_topic(bot, b, "/watch")
    assert "deepseek" in listed.text.lower()
    (none_in_a,) = await in_topic(bot, a, "/watch")
    assert "还没有关注" in none_in_a.text  # watches belong to the topic they were set in
    engine = bot.app.bot_data.services.engine  # type: ignore[union-attr]
    assert engine is not None
    assert await engine.on_new_issues([dt.date(2025, 2, 14)]) == 1
    await settled(bot)
    alerts = [m for m in api.messages_to(FORUM) if m.text.startswith("2025-02-14 · 🔔")]
    assert alerts and {m.thread_id for m in alerts} == {b}
    assert await engine.on_new_issues([dt.date(2025, 2, 14)]) == 0  # once per issue
    (removed,) = await in_topic(bot, b, "/unwatch deepseek")
    assert removed.thread_id == b and await chats.watches(db_of(bot), FORUM, b) == []


async def test_slow_down_answers_in_the_topic(
    tmp_path: Path, bundled: Path, open_api: FakeBotAPI
) -> None:
    a = open_api.create_topic(FORUM, "brief")
    async with BotUnderTest(open_api, make_config(tmp_path, bundled, open_api)) as b:
        answers = [await in_topic(b, a, "/help") for _ in range(10)]
    slow = [m for got in answers for m in got if "太快" in m.text]
    assert len(slow) == 1 and slow[0].thread_id == a


# -- closed and deleted topics -----------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "delete"])
async def test_a_gone_topic_is_deactivated_alone_and_start_brings_it_back(
    bot: BotUnderTest, how: str
) -> None:
    api, db = bot.api, db_of(bot)
    a, b = api.create_topic(FORUM, "brief"), api.create_topic(FORUM, "alerts")
    for thread in (a, b, None):
        await in_topic(bot, thread, "/start")
    await in_topic(bot, a, "/watch DeepSeek")
    (api.close_topic if how == "close" else api.delete_topic)(FORUM, a)
    before = len(api.calls())
    await broadcast(bot)
    await settled(bot)
    parts = await n_parts(bot)
    assert issue_parts(api) == {b: parts, None: parts}  # the rest of the group got it
    tried = [
        c
        for c in api.calls()[before:]
        if c.method == "sendMessage" and str(c.params.get("message_thread_id")) == str(a)
    ]
    assert len(tried) == 1 and not tried[0].ok  # refused once, never retried
    expected = "TOPIC_CLOSED" if how == "close" else "message thread not found"
    assert tried[0].description == f"Bad Request: {expected}"
    rows = await db.rows(
        "SELECT status, last_error FROM outbox WHERE thread_id = ? AND kind = 'issue'", [a]
    )
    assert {r[0] for r in rows} == {"cancelled"}
    assert all(expected.lower() in r[1].lower() for r in rows)
    assert await topics.status(db, FORUM, a) is TopicStatus.GONE
    record = await chats.get(db, FORUM)
    assert record is not None and record.status is Status.ACTIVE  # the chat is not blocked
    assert await topics.status(db, FORUM, b) is TopicStatus.ACTIVE

    # Nothing more is planned for it: not the next issue, not its watch.
    engine = bot.app.bot_data.services.engine  # type: ignore[union-attr]
    assert engine is not None
    await broadcast(bot, "2025-02-14")
    assert await engine.on_new_issues([dt.date(2025, 2, 14)]) == 0
    await settled(bot)
    later = "SELECT count(*) FROM outbox WHERE thread_id = ? AND issue = '2025-02-14'"
    assert not await db.value(later, [a])

    # Reopened (a deleted topic cannot be: a new one is made), /start subscribes it again.
    if how == "close":
        api.reopen_topic(FORUM, a)
        target = a
    else:
        target = api.create_topic(FORUM, "brief again")
    (welcome,) = await in_topic(bot, target, "/start")
    assert welcome.thread_id == target and "这个话题" in welcome.text
    await broadcast(bot, "2025-02-06")
    await settled(bot)
    first = await n_parts(bot, "2025-02-06")
    assert issue_parts(api, "2025-02-06") == {target: first, b: first, None: first}


async def test_general_topic_closed_stops_only_the_groups_own_subscription(
    bot: BotUnderTest,
) -> None:
    api, db = bot.api, db_of(bot)
    a = api.create_topic(FORUM, "brief")
    for thread in (a, None):
        await in_topic(bot, thread, "/start")
    # Telegram answers a send without a thread TOPIC_CLOSED while General is closed.
    api.close_general(FORUM)
    await broadcast(bot)
    await settled(bot)
    parts = await n_parts(bot)
    assert issue_parts(api) == {a: parts}
    record = await chats.get(db, FORUM)
    assert record is not None and record.status is Status.STOPPED
    assert "General" in (record.reason or "")
    assert await topics.status(db, FORUM, a) is TopicStatus.ACTIVE


# -- restarts and migrations -------------------------------------------------------------


async def test_exactly_once_across_a_restart(config: Config, open_api: FakeBotAPI) -> None:
    api = open_api
    a, b = api.create_topic(FORUM, "brief"), api.create_topic(FORUM, "alerts")
    async with BotUnderTest(api, config) as first:
        for thread in (a, b, None):
            await in_topic(first, thread, "/start")
        # Sends to the forum fail for a while: what is pending when the bot stops waits.
        api.set_chat_fault(FORUM, 502, "Bad Gateway")
        await broadcast(first)
        await asyncio.sleep(0.1)  # the first sends were refused
        parts = await n_parts(first)
        assert issue_parts(api) == {}
    api.clear_fault(FORUM)
    stopped = await Database.open(config.storage_path)  # the backoff passed meanwhile
    async with stopped.transaction() as db:
        assert await db.execute("UPDATE outbox SET next_at = 0 WHERE status = 'pending'")
    await stopped.close()
    async with BotUnderTest(api, config) as second:
        await settled(second)
        assert issue_parts(api) == {a: parts, b: parts, None: parts}
        await broadcast(second)  # everyone has it: nothing more
        engine = second.app.bot_data.services.engine  # type: ignore[union-attr]
        assert engine is not None
        await engine.tick()
        await settled(second)
    async with BotUnderTest(api, config) as third:
        await settled(third)
    assert issue_parts(api) == {a: parts, b: parts, None: parts}


async def test_group_to_supergroup_keeps_subscription_time_quiet_watches_and_topics(
    bot: BotUnderTest,
) -> None:
    api, db = bot.api, db_of(bot)
    group, supergroup = -4001, -100400
    api.set_member(group, USER, "administrator")
    for command in ("/start", "/time now", "/quiet on", "/watch DeepSeek"):
        await bot.say(group, command, chat_type="group")
    # A plain group has no topics; the code moves them all the same (a topic that the
    # supergroup, made a forum, has).
    api.migrate(group, supergroup)
    moved = api.create_topic(supergroup, "moved")
    await topics.subscribe(db, ChatInfo(group, "group"), moved)
    await broadcast(bot)
    await settled(bot)
    delivered = [m for m in api.messages_to(supergroup) if m.text.startswith(f"{ISSUE} · ")]
    assert {m.thread_id for m in delivered} == {None, moved}
    new = await chats.get(db, supergroup)
    assert new is not None and new.status is Status.ACTIVE
    assert await chats.is_on_arrival(db, supergroup)  # /time now survives (it was lost)
    assert await chats.is_quiet(db, supergroup)
    assert await chats.watches(db, supergroup) == ["deepseek"]
    assert await topics.list_topics(db, supergroup) == [(moved, TopicStatus.ACTIVE)]
    assert await topics.list_topics(db, group) == []


async def test_migrate_keeps_an_hhmm_time_and_topics(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "m.sqlite3")
    try:
        group = ChatInfo(-4002, "group", "Team")
        await chats.subscribe(db, group)
        await chats.set_delivery_time(db, group, dt.time(7, 45))
        await topics.subscribe(db, group, 3)
        await chats.add_watch(db, group, "小米", thread_id=3)
        assert await audience.migrated(db, group.id, -100402)
        new = await chats.get(db, -100402)
        assert new is not None and new.delivery_time == dt.time(7, 45)
        assert await chats.watches(db, -100402, 3) == ["小米"]
        assert await topics.status(db, -100402, 3) is TopicStatus.ACTIVE
    finally:
        await db.close()


async def test_schema_upgrade_keeps_every_subscription_outbox_row_and_watch(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    topics_at = next(i for i, m in enumerate(MIGRATIONS) if "CREATE TABLE topics" in m)
    old = await Database.open(path, migrations=MIGRATIONS[:topics_at])  # the version before
    async with old.transaction():
        await old.execute(
            "INSERT INTO chats (id, type, status, delivery_time, last_issue, quiet)"
            " VALUES (1, 'private', 'active', 'now', '2025-02-10', 1),"
            " (-100700, 'supergroup', 'stopped', '07:45', NULL, 0)"
        )
        await old.execute(
            "INSERT INTO texts (id, sha256, html) VALUES (1, 'a', 'x'), (2, 'b', 'y')"
        )
        await old.execute(
            "INSERT INTO broadcasts (id, trigger, started_at) VALUES (1, 'schedule', 0)"
        )
        await old.execute(
            "INSERT INTO outbox (id, kind, issue, chat_id, part, text_id, status, message_id,"
            " broadcast_id, created_at) VALUES"
            " (1, 'issue', '2025-02-10', 1, 0, 1, 'sent', 5, 1, 0),"
            " (2, 'issue', '2025-02-10', 1, 1, 2, 'pending', NULL, 1, 0),"
            " (3, 'watch', '2025-02-10', -100700, 0, 2, 'failed', NULL, NULL, 0)"
        )
        await old.execute(
            "INSERT INTO watches (chat_id, terms) VALUES (1, '小米'), (-100700, 'deepseek')"
        )
    before = {t: await old.rows(f"SELECT * FROM {t} ORDER BY 1, 2") for t in ("chats", "texts")}
    old_outbox = await old.rows("SELECT * FROM outbox ORDER BY id")
    await old.close()

    db = await Database.open(path)
    try:
        assert await db.value("PRAGMA user_version") == len(MIGRATIONS)
        for table, rows in before.items():
            assert await db.rows(f"SELECT * FROM {table} ORDER BY 1, 2") == rows
        cols = "id, kind, issue, chat_id, part, text_id, status, message_id, attempts,"
        cols += " next_at, last_error, broadcast_id, created_at, sent_at"
        assert [tuple(r) for r in await db.rows(f"SELECT {cols} FROM outbox ORDER BY id")] == [
            tuple(r) for r in old_outbox
        ]
        assert await db.rows("SELECT DISTINCT thread_id FROM outbox") == [(0,)]
        assert await chats.watches(db, 1) == ["小米"]
        assert await chats.watches(db, -100700) == ["deepseek"]
        # The new key: the same part may now go to a topic of the same chat as well.
        async with db.transaction():
            await db.execute(
                "INSERT INTO outbox (kind, issue, chat_id, thread_id, part, text_id, created_at)"
                " VALUES ('issue', '2025-02-10', 1, 7, 0, 1, 0)"
            )
        assert await db.value("SELECT count(*) FROM outbox") == 4
        indexes = {
            r[0] for r in await db.rows("SELECT name FROM sqlite_master WHERE tbl_name = 'outbox'")
        }
        assert {"outbox_pending", "outbox_chat", "outbox_broadcast"} <= indexes
    finally:
        await db.close()


# -- corrections -------------------------------------------------------------------------


async def test_a_correction_edits_each_topics_message_once(tmp_path: Path) -> None:
    mar = "docs/2025/newsflash-202503.md"
    with fake_bot_api(rate_limits=False) as api:
        a, b, c = (api.create_topic(FORUM, name) for name in ("A", "B", "C"))
        async with api.bot() as tg, World(tmp_path, Upstream(tmp_path / "up.git"), tg) as w:
            await w.push({"docs/2025/newsflash-202502.md": month(issue("2025.02.28", "旧"))})
            await w.seed((FORUM, "supergroup", "2025-02-28"))
            async with w.db.transaction() as db:
                await db.executemany(
                    "INSERT INTO topics (chat_id, thread_id, status, last_issue, last_slot)"
                    " VALUES (?, ?, 'active', '2025-02-28', '2025-03-01T00:30:00Z')",
                    [(FORUM, t) for t in (a, b, c)],
                )
            await w.push({mar: month(issue("2025.03.01", "小米发布新芯片", "英伟达财报"))})
            await w.tick("2025-03-02 00:31")
            await w.deliver()
            assert issue_parts(api, "2025-03-01") == {None: 1, a: 1, b: 1, c: 1}
            api.delete_topic(FORUM, c)
            await topics.mark_gone(w.db, FORUM, c, "deleted")  # as a failed send tells
            w.at("2025-03-02 02:00")
            await w.push({mar: month(issue("2025.03.01", "小米发布新芯片", "英伟达财报超预期"))})
            w.now += dt.timedelta(seconds=SETTLE + 1)
            await w.tick()
            await w.deliver()
            edited = [m for m in api.calls("editMessageText") if m.ok]
            assert len(edited) == 3  # General, A and B: each message once; C is gone
            shown = {m.thread_id: api.message(FORUM, m.message_id or 0) for m in api.sent}
            for thread in (None, a, b):
                current = shown[thread]
                assert current is not None and "英伟达财报超预期" in current["text"]
            assert not api.calls("editMessageText")[3:]


async def test_a_kicked_bot_stops_every_topic_like_the_group(bot: BotUnderTest) -> None:
    api, db = bot.api, db_of(bot)
    a = api.create_topic(FORUM, "brief")
    for thread in (a, None):
        await in_topic(bot, thread, "/start")
    await bot.feed(my_chat_member_update(FORUM, "supergroup", "member", "kicked"))
    await bot.feed(my_chat_member_update(FORUM, "supergroup", "left", "member"))  # back
    record = await chats.get(db, FORUM)
    assert record is not None and record.status is Status.STOPPED
    assert await topics.status(db, FORUM, a) is TopicStatus.STOPPED  # a /start is needed
    assert "没有要推送" in await broadcast(bot)


async def test_stats_count_topics(bot: BotUnderTest) -> None:
    a, b = bot.api.create_topic(FORUM, "A"), bot.api.create_topic(FORUM, "B")
    await in_topic(bot, a, "/start")
    await in_topic(bot, b, "/start")
    await in_topic(bot, b, "/stop")
    (shown,) = await bot.say(ADMIN, "/stats")
    assert "Forum topics: active 1, stopped 1" in shown.text


_RUNNER = """
import asyncio, sys
from bot.config import Delivery
from bot.core.pacing import Limits
from bot.delivery.engine import DeliveryEngine
from bot.db.archive import Archive
from bot.telegram.fastsend import FastTransport

async def main(path, base_url, token):
    store = await Archive.open(path)
    limits = Limits(per_second=200, burst=20, group_per_minute=6000, group_burst=5, in_flight=8)
    transport = FastTransport(token, base_url=base_url, pool=8)
    engine = DeliveryEngine(store, transport, Delivery(), limits=limits, poll_seconds=0.1)
    await engine.start()
    await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:]))
"""


def _runner(db: Path, api: FakeBotAPI) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-c", _RUNNER, str(db), api.base_url, api.token]
    return subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.DEVNULL)


async def test_kill_9_mid_broadcast_to_topics_loses_nothing_and_resends_nothing_confirmed(
    tmp_path: Path, bundled: Path, open_api: FakeBotAPI
) -> None:
    api = open_api
    forums = [-100800 - f for f in range(10)]
    threads = {f: [api.create_topic(f, name) for name in ("A", "B", "C")] for f in forums}
    archive = await Archive.open(tmp_path / "kill.sqlite3")
    try:
        await archive.sync(bundled)
        db = archive.db
        for f in forums:
            info = ChatInfo(f, "supergroup")
            await chats.subscribe(db, info)
            for thread in threads[f]:
                await topics.subscribe(db, info, thread)
        engine = DeliveryEngine(archive, _NoSend(), Delivery())
        plan = await engine.broadcast_now(dt.date(2025, 2, 14))
        total = plan.messages
        assert plan.chats == 40 and total >= 40
        first = _runner(db.path, api)
        try:
            await api.wait_sent_async(total // 3, timeout=20)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        confirmed = {
            tuple(r)
            for r in await db.rows(
                "SELECT chat_id, thread_id, part FROM outbox WHERE status = 'sent'"
            )
        }
        before = len(api.sent)
        assert total // 3 <= before < total
        second = _runner(db.path, api)
        try:
            for _ in range(600):
                if not await db.value("SELECT count(*) FROM outbox WHERE status = 'pending'"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the restarted process did not finish")
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait()
        texts = {
            r[0]: r[1]
            for r in await db.rows(
                "SELECT t.html, o.part FROM outbox o JOIN texts t ON t.id = o.text_id"
            )
        }
        sent = [(m.chat_id, m.thread_id or 0, texts[m.params["text"]]) for m in api.sent]
        assert not set(sent[before:]) & confirmed  # nothing confirmed was sent again
        assert 0 <= len(sent) - total <= 8  # only what was in flight may repeat
        assert set(sent) == {
            tuple(r) for r in await db.rows("SELECT chat_id, thread_id, part FROM outbox")
        }  # every part reached every topic and every General: the right thread each
    finally:
        await archive.close()


class _NoSend:
    async def send_html(self, *args: object, **kw: object) -> int:
        raise AssertionError("the planning engine does not send")

    async def edit_html(self, *args: object, **kw: object) -> None:
        raise AssertionError("the planning engine does not edit")

    def redact(self, text: str) -> str:
        return text


async def test_only_a_subscribed_topic_going_away_counts_as_newly_inactive(
    store: Archive,
) -> None:
    # A broadcast's report counts the chats (and topics) it lost; a topic that only had
    # watches, or that was already gone, was not a subscriber and is not counted.
    db = store.db
    info = ChatInfo(FORUM, "supergroup", "forum")
    await chats.note(db, info)
    assert await topics.subscribe(db, info, 7)
    assert await topics.mark_gone(db, FORUM, 7, "closed") is True
    assert await topics.mark_gone(db, FORUM, 7, "closed") is False  # already gone
    assert await topics.mark_gone(db, FORUM, 9, "deleted") is False  # only watching
    assert await topics.status(db, FORUM, 9) is TopicStatus.GONE
    assert await topics.subscribe(db, info, 7)  # reopened: /start there again
    assert await topics.unsubscribe(db, FORUM, 7)
    assert await topics.mark_gone(db, FORUM, 7, "closed") is False  # stopped before
