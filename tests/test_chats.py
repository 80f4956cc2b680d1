"""The chat repository: subscriptions, what Telegram reports, migration, channels, watches."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

import pytest
import telegram

from bot.core.search import QueryError
from bot.db import channels as db_channels
from bot.db import chats, database
from bot.db.archive import Archive
from bot.db.chats import ChatInfo, Status, WatchLimitError
from bot.db.schema import MIGRATIONS
from bot.delivery import audience
from bot.telegram import channels
from fakebot import FakeBotAPI

NOW = dt.datetime(2025, 2, 14, 3, 0, tzinfo=dt.UTC)
ALICE = ChatInfo(101, "private", "Alice", "alice")
GROUP = ChatInfo(-2001, "group", "Team")
CHANNEL = ChatInfo(-1001234, "channel", "News", "newsroom")


async def queue(store: Archive, chat_id: int, parts: int = 2, kind: str = "issue") -> None:
    """Pending outbox rows for ``chat_id``, as the engine would write them."""
    async with store.db.transaction() as db:
        await db.execute("INSERT OR IGNORE INTO texts (id, sha256, html) VALUES (1, 'x', 'hi')")
        await db.executemany(
            "INSERT INTO outbox (kind, issue, chat_id, part, text_id, created_at)"
            " VALUES (?, '2025-02-14', ?, ?, 1, ?)",
            [(kind, chat_id, p, time.time()) for p in range(parts)],
        )


async def outbox(store: Archive) -> list[tuple[int, str, str]]:
    rows = await store.db.rows("SELECT chat_id, kind, status FROM outbox ORDER BY id")
    return [(r[0], r[1], r[2]) for r in rows]


async def test_subscribe_and_unsubscribe_report_changes(store: Archive) -> None:
    assert await chats.get(store.db, ALICE.id) is None
    assert await chats.subscribe(store.db, ALICE, language="en", now=NOW) is True
    assert await chats.subscribe(store.db, ALICE, now=NOW) is False
    chat = await chats.get(store.db, ALICE.id)
    assert chat is not None
    assert (chat.status, chat.title, chat.username, chat.language) == (
        Status.ACTIVE,
        "Alice",
        "alice",
        "en",
    )
    # The first delivery is at the next slot, not a catch-up of one already past.
    assert chat.last_slot == "2025-02-14T03:00:00Z"
    assert chat.subscribed_at == "2025-02-14T03:00:00Z"
    assert await audience.stop(store.db, ALICE.id) is True
    assert await audience.stop(store.db, ALICE.id) is False
    stopped = await chats.get(store.db, ALICE.id)
    assert stopped is not None and stopped.status is Status.STOPPED


async def test_unsubscribe_cancels_pending_issue_rows_not_watches(store: Archive) -> None:
    await chats.subscribe(store.db, ALICE, now=NOW)
    await queue(store, ALICE.id, 2, "issue")
    await queue(store, ALICE.id, 1, "watch")
    await audience.stop(store.db, ALICE.id)
    assert await outbox(store) == [
        (101, "issue", "cancelled"),
        (101, "issue", "cancelled"),
        (101, "watch", "pending"),
    ]


async def test_language_and_delivery_time(store: Archive) -> None:
    await chats.set_language(store.db, GROUP, "zh")
    await chats.set_delivery_time(store.db, GROUP, dt.time(7, 5))
    chat = await chats.get(store.db, GROUP.id)
    assert chat is not None
    assert (chat.language, chat.delivery_time, chat.status) == ("zh", dt.time(7, 5), Status.STOPPED)
    await chats.set_delivery_time(store.db, GROUP, None)
    chat = await chats.get(store.db, GROUP.id)
    assert chat is not None and chat.delivery_time is None


async def test_mark_inactive_cancels_everything_pending(store: Archive) -> None:
    await chats.subscribe(store.db, ALICE, now=NOW)
    await queue(store, ALICE.id, 3)
    assert await audience.unreachable(store.db, ALICE.id, "Forbidden: bot was blocked by the user")
    assert not await audience.unreachable(store.db, ALICE.id, "again")
    chat = await chats.get(store.db, ALICE.id)
    assert chat is not None and chat.status is Status.BLOCKED
    assert chat.reason == "Forbidden: bot was blocked by the user"
    assert {s for _, _, s in await outbox(store)} == {"cancelled"}
    # Subscribing again (after an unblock) makes it active.
    assert await chats.subscribe(store.db, ALICE, now=NOW)


@pytest.mark.parametrize(
    ("start", "new_status", "changed", "expected"),
    [
        ("active", "kicked", True, Status.BLOCKED),
        ("active", "left", True, Status.BLOCKED),
        ("stopped", "kicked", True, Status.BLOCKED),
        ("blocked", "member", True, Status.STOPPED),  # reachable again, not subscribed
        ("blocked", "administrator", True, Status.STOPPED),
        ("active", "administrator", False, Status.ACTIVE),
        (None, "administrator", False, Status.STOPPED),  # added to a channel: noted
    ],
)
async def test_note_member(
    store: Archive, start: str | None, new_status: str, changed: bool, expected: Status
) -> None:
    if start == "active":
        await chats.subscribe(store.db, GROUP, now=NOW)
    elif start == "stopped":
        await chats.subscribe(store.db, GROUP, now=NOW)
        await audience.stop(store.db, GROUP.id)
    elif start == "blocked":
        await chats.subscribe(store.db, GROUP, now=NOW)
        await audience.unreachable(store.db, GROUP.id, "kicked")
    assert await audience.member_changed(store.db, GROUP, new_status) is changed
    chat = await chats.get(store.db, GROUP.id)
    assert chat is not None and chat.status is expected


async def test_migrate_carries_everything(store: Archive) -> None:
    await chats.subscribe(store.db, GROUP, language="en", now=NOW)
    await chats.set_delivery_time(store.db, GROUP, dt.time(9, 0))
    await chats.add_watch(store.db, GROUP, "小米")
    async with store.db.transaction() as db:
        await db.execute("UPDATE chats SET last_issue = '2025-02-10' WHERE id = ?", [GROUP.id])
    await queue(store, GROUP.id, 2)
    new_id = -1009999
    assert await audience.migrated(store.db, GROUP.id, new_id) is True
    assert await audience.migrated(store.db, GROUP.id, new_id) is False
    old, new = await chats.get(store.db, GROUP.id), await chats.get(store.db, new_id)
    assert old is not None and new is not None
    assert (old.status, old.migrated_to) == (Status.MIGRATED, new_id)
    assert (new.type, new.status, new.language, new.delivery_time, new.last_issue) == (
        "supergroup",
        Status.ACTIVE,
        "en",
        dt.time(9, 0),
        dt.date(2025, 2, 10),
    )
    assert await chats.watches(store.db, new_id) == ["小米"]
    assert await chats.watches(store.db, GROUP.id) == []
    assert await outbox(store) == [(new_id, "issue", "pending")] * 2


async def test_migrate_onto_a_chat_that_already_has_the_message(store: Archive) -> None:
    await chats.subscribe(store.db, GROUP, now=NOW)
    new = ChatInfo(-1009999, "supergroup", "Team")
    await chats.subscribe(store.db, new, now=NOW)
    await queue(store, GROUP.id, 1)
    await queue(store, new.id, 1)
    await audience.migrated(store.db, GROUP.id, new.id)
    assert sorted(await outbox(store)) == sorted(
        [(GROUP.id, "issue", "cancelled"), (new.id, "issue", "pending")]
    )


async def test_channels_managed_by_a_user(store: Archive) -> None:
    assert await db_channels.subscribe_channel(store.db, CHANNEL, user_id=7, now=NOW)
    assert not await db_channels.subscribe_channel(store.db, CHANNEL, user_id=7, now=NOW)
    [listed] = await db_channels.managed_channels(store.db, 7)
    assert (listed.id, listed.status, listed.username) == (CHANNEL.id, Status.ACTIVE, "newsroom")
    assert await db_channels.managed_channels(store.db, 8) == []
    assert await audience.stop_channel(store.db, CHANNEL, user_id=7)
    [listed] = await db_channels.managed_channels(store.db, 7)
    assert listed.status is Status.STOPPED


async def test_watches_limit_duplicates_and_removal(store: Archive) -> None:
    assert await chats.add_watch(store.db, ALICE, "DeepSeek")
    assert not await chats.add_watch(store.db, ALICE, "  deepseek ")  # same watch
    for n in range(chats.MAX_WATCHES - 1):
        assert await chats.add_watch(store.db, ALICE, f"term{n}")
    with pytest.raises(WatchLimitError):
        await chats.add_watch(store.db, ALICE, "one too many")
    assert len(await chats.watches(store.db, ALICE.id)) == chats.MAX_WATCHES
    assert await chats.remove_watch(store.db, ALICE.id, "DEEPSEEK")
    assert not await chats.remove_watch(store.db, ALICE.id, "deepseek")
    assert await chats.add_watch(store.db, ALICE, "one too many")
    # A watch-only chat is known but not subscribed.
    chat = await chats.get(store.db, ALICE.id)
    assert chat is not None and chat.status is Status.STOPPED


async def test_watch_terms_that_find_would_refuse(store: Archive) -> None:
    with pytest.raises(QueryError):
        await chats.add_watch(store.db, ALICE, "   ")


async def test_counts_and_paged_listing(store: Archive) -> None:
    for n in range(1, 8):
        await chats.subscribe(store.db, ChatInfo(n, "private", f"u{n}"), now=NOW)
    await chats.subscribe(store.db, GROUP, now=NOW)
    await audience.unreachable(store.db, 3, "blocked")
    assert await chats.counts(store.db) == {
        ("private", "active"): 6,
        ("private", "blocked"): 1,
        ("group", "active"): 1,
    }
    listed = [c.id async for c in chats.iter_chats(store.db, page=2)]
    assert listed == [GROUP.id, 1, 2, 3, 4, 5, 6, 7]
    active = await chats.list_chats(store.db, status="active", type="private")
    assert [c.id for c in active] == [1, 2, 4, 5, 6, 7]
    assert active[0].as_dict()["status"] == "active"


async def test_resolve_and_sync_config_channels(store: Archive, fake_api: FakeBotAPI) -> None:
    fake_api.add_chat(CHANNEL.id, "channel", title="News", username="newsroom")
    fake_api.add_chat(-1005555, "channel", title="Other")
    fake_api.migrate(-3003, -1003003)
    refs: list[str | int] = ["@newsroom", "@missing_one", -1005555, -3003]
    async with fake_api.bot() as bot:
        resolved = await channels.resolve_channels(bot, refs)
    assert [c.id for c in resolved.found] == [CHANNEL.id, -1005555]
    assert resolved.found[0] == ChatInfo(CHANNEL.id, "channel", "News", "newsroom")
    assert resolved.problems == [
        "delivery.channels[1] @missing_one: Chat not found",
        "delivery.channels[3] -3003: migrated to -1003003; update the config",
    ]
    gone = await db_channels.sync_config_channels(store.db, resolved.found, refs, now=NOW)
    assert gone == []
    news = await chats.get(store.db, CHANNEL.id)
    assert news is not None and (news.status, news.source) == (Status.ACTIVE, "config")
    # Taken out of the config: stopped. Failing to resolve is not being taken out.
    gone = await channels.sync_config_channels(store.db, [], ["@newsroom"], now=NOW)
    assert gone == [-1005555]
    news = await chats.get(store.db, CHANNEL.id)
    assert news is not None and news.status is Status.ACTIVE


def test_chat_info_from_telegram() -> None:
    user = telegram.Chat(5, "private", first_name="Ada", last_name="L", username="ada")
    assert ChatInfo.from_telegram(user) == ChatInfo(5, "private", "Ada L", "ada")
    group = telegram.Chat(-7, "supergroup", title="Team")
    assert ChatInfo.from_telegram(group) == ChatInfo(-7, "supergroup", "Team", None)


async def test_an_archive_database_is_upgraded_in_place(tmp_path: Path) -> None:
    """A database made by the previous release (the index only) gains the delivery tables;
    its index is emptied for the next sync to rebuild (the search folding migration)."""
    path = tmp_path / "old.sqlite3"
    db = await database.connect(path)
    assert await database.apply_migrations(db, MIGRATIONS[:1]) == 1
    await db.execute(
        "INSERT INTO issues (date, title, file, line, digest) VALUES ('2025-02-14', 't', 'f', 1, 'd')"
    )
    await db.close()
    async with await Archive.open(path) as store:
        assert await store.latest_date() is None  # re-indexed from the files at the next sync
        assert await chats.subscribe(store.db, ALICE, now=NOW)
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
