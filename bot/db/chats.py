"""The chats the bot knows: subscriptions to the daily brief, channel managers, keyword
watches, and what Telegram told us about each chat (blocked, migrated, added).

A thin repository over :class:`~bot.store.Store`. Reads use ``store.db``; writes of more than
one statement go through ``store.transaction()`` because the connection is shared.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import aiosqlite
from telegram.error import ChatMigrated, TelegramError

from bot.core.schedule import format_hhmm, parse_hhmm, slot_key
from bot.core.search import clean, fold, parse_query
from bot.db.store import Store

log = logging.getLogger(__name__)

MAX_WATCHES = 10
CHAT_TYPES = ("private", "group", "supergroup", "channel")


class Status(StrEnum):
    ACTIVE = "active"  # receives the daily brief
    STOPPED = "stopped"  # reachable, not subscribed (stopped, or only noted or watching)
    BLOCKED = "blocked"  # Telegram refuses: blocked, kicked, deactivated, not found
    MIGRATED = "migrated"  # the group became a supergroup: see migrated_to


# Chats Telegram still lets us write to (watches go to these even when not subscribed).
REACHABLE = (Status.ACTIVE.value, Status.STOPPED.value)


class ChatError(ValueError):
    """A request about a chat that cannot be done; the message says why."""


class WatchLimitError(ChatError):
    pass


@dataclass(frozen=True)
class ChatInfo:
    """What Telegram tells us about a chat."""

    id: int
    type: str
    title: str = ""
    username: str | None = None

    @classmethod
    def from_telegram(cls, chat: _TelegramChat) -> ChatInfo:
        title = chat.title or " ".join(p for p in (chat.first_name, chat.last_name) if p)
        kind = str(chat.type) if chat.type in CHAT_TYPES else "private"
        return cls(chat.id, kind, title, chat.username)


class _TelegramChat(Protocol):
    """The fields of ``telegram.Chat`` (or ``ChatFullInfo``) this module reads."""

    @property
    def id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def username(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...
    @property
    def last_name(self) -> str | None: ...


@dataclass(frozen=True)
class ChatRecord:
    id: int
    type: str
    title: str
    username: str | None
    language: str | None
    subscribed_at: str | None
    status: Status
    reason: str | None
    source: str
    delivery_time: dt.time | None
    last_issue: dt.date | None
    last_slot: str | None
    migrated_to: int | None

    @property
    def subscribed(self) -> bool:
        return self.status is Status.ACTIVE

    def as_dict(self) -> dict[str, Any]:
        """For ``briefbot subscribers --json``."""
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "username": self.username,
            "language": self.language,
            "status": self.status.value,
            "reason": self.reason,
            "source": self.source,
            "subscribed_at": self.subscribed_at,
            "delivery_time": format_hhmm(self.delivery_time) if self.delivery_time else None,
            "last_issue": self.last_issue.isoformat() if self.last_issue else None,
            "migrated_to": self.migrated_to,
        }


_COLUMNS = (
    "id, type, title, username, language, subscribed_at, status, reason, source,"
    " delivery_time, last_issue, last_slot, migrated_to"
)


def _record(row: Sequence[Any]) -> ChatRecord:
    (cid, kind, title, username, lang, since, status, reason, source, dtime, last, slot, to) = row
    return ChatRecord(
        cid,
        kind,
        title,
        username,
        lang,
        since,
        Status(status),
        reason,
        source,
        parse_hhmm(dtime) if dtime else None,
        dt.date.fromisoformat(last) if last else None,
        slot,
        to,
    )


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def _iso(now: dt.datetime) -> str:
    return slot_key(now)


async def _fetch(db: aiosqlite.Connection, sql: str, params: Iterable[Any] = ()) -> list[Any]:
    async with db.execute(sql, tuple(params)) as cur:
        return list(await cur.fetchall())


async def _get(db: aiosqlite.Connection, chat_id: int) -> ChatRecord | None:
    rows = await _fetch(db, f"SELECT {_COLUMNS} FROM chats WHERE id = ?", [chat_id])
    return _record(rows[0]) if rows else None


async def _note(db: aiosqlite.Connection, info: ChatInfo) -> None:
    """Create the chat (not subscribed) or refresh what Telegram says about it."""
    await db.execute(
        "INSERT INTO chats (id, type, title, username) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET type = excluded.type, title = excluded.title,"
        " username = excluded.username, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
        [info.id, info.type, info.title, info.username],
    )


async def _cancel_pending(
    db: aiosqlite.Connection, chat_id: int, why: str, kind: str | None = None
) -> None:
    sql = "UPDATE outbox SET status = 'cancelled', last_error = ? WHERE chat_id = ? AND status = 'pending'"
    params: list[Any] = [why, chat_id]
    if kind:
        sql += " AND kind = ?"
        params.append(kind)
    await db.execute(sql, params)


# -- reading ------------------------------------------------------------------------------


async def get(store: Store, chat_id: int) -> ChatRecord | None:
    return await _get(store.db, chat_id)


async def iter_chats(
    store: Store, *, status: str | None = None, type: str | None = None, page: int = 1000
) -> AsyncIterator[ChatRecord]:
    """Every chat in id order, a page at a time (there may be 100,000)."""
    where: list[str] = ["id > ?"]
    params: list[Any] = [0]
    if status:
        where.append("status = ?")
        params.append(status)
    if type:
        where.append("type = ?")
        params.append(type)
    cursor = -(2**63)
    while True:
        params[0] = cursor
        rows = await _fetch(
            store.db,
            f"SELECT {_COLUMNS} FROM chats WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            [*params, page],
        )
        for row in rows:
            yield _record(row)
        if len(rows) < page:
            return
        cursor = rows[-1][0]


async def list_chats(
    store: Store, *, status: str | None = None, type: str | None = None
) -> list[ChatRecord]:
    return [chat async for chat in iter_chats(store, status=status, type=type)]


async def counts(store: Store) -> dict[tuple[str, str], int]:
    """Chats by (type, status), for ``/stats``."""
    rows = await _fetch(store.db, "SELECT type, status, count(*) FROM chats GROUP BY 1, 2")
    return {(kind, status): n for kind, status, n in rows}


# -- subscriptions ------------------------------------------------------------------------


async def _subscribe(
    db: aiosqlite.Connection, info: ChatInfo, language: str | None, source: str, now: dt.datetime
) -> bool:
    await _note(db, info)
    if language:
        await db.execute("UPDATE chats SET language = ? WHERE id = ?", [language, info.id])
    # last_slot = now: the first delivery is at the next slot, not a catch-up of today's.
    cur = await db.execute(
        "UPDATE chats SET status = 'active', reason = NULL, subscribed_at = ?, source = ?,"
        " last_slot = max(coalesce(last_slot, ''), ?) WHERE id = ? AND status != 'active'",
        [_iso(now), source, _iso(now), info.id],
    )
    return cur.rowcount > 0


async def subscribe(
    store: Store,
    info: ChatInfo,
    *,
    language: str | None = None,
    source: str = "user",
    now: dt.datetime | None = None,
) -> bool:
    """Subscribe the chat to the daily brief; False if it already was."""
    async with store.transaction() as db:
        return await _subscribe(db, info, language, source, _now(now))


async def unsubscribe(store: Store, chat_id: int, reason: str = "stopped by the user") -> bool:
    """Stop the daily brief (watches go on); False if it was not subscribed."""
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE chats SET status = 'stopped', reason = ? WHERE id = ? AND status = 'active'",
            [reason, chat_id],
        )
        if cur.rowcount:
            await _cancel_pending(db, chat_id, reason, kind="issue")
        return cur.rowcount > 0


async def set_language(store: Store, info: ChatInfo, language: str | None) -> None:
    async with store.transaction() as db:
        await _note(db, info)
        await db.execute("UPDATE chats SET language = ? WHERE id = ?", [language, info.id])


async def set_delivery_time(store: Store, info: ChatInfo, time: dt.time | None) -> None:
    """The chat's own delivery time (in ``delivery.timezone``); None: the configured times."""
    value = format_hhmm(time) if time else None
    async with store.transaction() as db:
        await _note(db, info)
        await db.execute("UPDATE chats SET delivery_time = ? WHERE id = ?", [value, info.id])


# -- what Telegram tells us ---------------------------------------------------------------


async def _mark_inactive(db: aiosqlite.Connection, chat_id: int, reason: str) -> bool:
    cur = await db.execute(
        "UPDATE chats SET status = 'blocked', reason = ? WHERE id = ? AND status IN (?, ?)",
        [reason, chat_id, *REACHABLE],
    )
    await _cancel_pending(db, chat_id, reason)
    return cur.rowcount > 0


async def mark_inactive(store: Store, chat_id: int, reason: str) -> bool:
    """Blocked, kicked, deactivated or not found: stop sending and cancel what is pending.
    True if the chat was reachable until now."""
    async with store.transaction() as db:
        return await _mark_inactive(db, chat_id, reason)


async def note_member(store: Store, info: ChatInfo, new_status: str) -> bool:
    """A ``my_chat_member`` update: the bot's own status in the chat is now ``new_status``
    (creator, administrator, member, restricted, left, kicked). True if the chat's status
    changed. Being added again makes a blocked chat reachable, not subscribed."""
    async with store.transaction() as db:
        await _note(db, info)
        if new_status in ("left", "kicked"):
            what = "blocked the bot" if info.type == "private" else f"bot {new_status}"
            return await _mark_inactive(db, info.id, what)
        cur = await db.execute(
            "UPDATE chats SET status = 'stopped', reason = ? WHERE id = ? AND status = 'blocked'",
            [f"bot is {new_status} again", info.id],
        )
        return cur.rowcount > 0


async def migrate(store: Store, old_id: int, new_id: int) -> bool:
    """The group ``old_id`` became the supergroup ``new_id``: move its subscription, delivery
    time, last issue, watches and pending messages there. False if already done."""
    async with store.transaction() as db:
        old = await _get(db, old_id)
        if old is None or old.status is Status.MIGRATED:
            await _repoint_pending(db, old_id, new_id)
            return False
        await _merge_into(db, old, new_id)
        await _repoint_pending(db, old_id, new_id)
        await db.execute(
            "UPDATE OR IGNORE watches SET chat_id = ? WHERE chat_id = ?", [new_id, old_id]
        )
        await db.execute("DELETE FROM watches WHERE chat_id = ?", [old_id])
        await db.execute(
            "UPDATE chats SET status = 'migrated', migrated_to = ?, reason = ? WHERE id = ?",
            [new_id, f"upgraded to supergroup {new_id}", old_id],
        )
        return True


async def _merge_into(db: aiosqlite.Connection, old: ChatRecord, new_id: int) -> None:
    new = await _get(db, new_id)
    await _note(db, ChatInfo(new_id, "supergroup", old.title, old.username))
    status = old.status.value
    if new is not None and (new.status is Status.ACTIVE or old.status is Status.BLOCKED):
        status = new.status.value
    last_issues = [d for d in (old.last_issue, new and new.last_issue) if d]
    slots = [s for s in (old.last_slot, new and new.last_slot) if s]
    await db.execute(
        "UPDATE chats SET status = ?, language = coalesce(language, ?), subscribed_at ="
        " coalesce(subscribed_at, ?), source = ?, delivery_time = coalesce(delivery_time, ?),"
        " last_issue = ?, last_slot = ?, reason = NULL WHERE id = ?",
        [
            status,
            old.language,
            old.subscribed_at,
            old.source,
            format_hhmm(old.delivery_time) if old.delivery_time else None,
            max(last_issues).isoformat() if last_issues else None,
            max(slots) if slots else None,
            new_id,
        ],
    )


async def _repoint_pending(db: aiosqlite.Connection, old_id: int, new_id: int) -> None:
    await db.execute(
        "UPDATE OR IGNORE outbox SET chat_id = ? WHERE chat_id = ? AND status = 'pending'",
        [new_id, old_id],
    )
    # Left behind only where the new chat already has that very message queued or sent.
    await _cancel_pending(db, old_id, f"migrated to {new_id}")


# -- channels -----------------------------------------------------------------------------


async def subscribe_channel(
    store: Store, channel: ChatInfo, user_id: int, *, now: dt.datetime | None = None
) -> bool:
    """``/channel @name`` by one of its administrators (the caller checked both rights)."""
    async with store.transaction() as db:
        changed = await _subscribe(db, channel, None, "user", _now(now))
        await db.execute(
            "INSERT OR IGNORE INTO channel_managers (channel_id, user_id) VALUES (?, ?)",
            [channel.id, user_id],
        )
        return changed


async def unsubscribe_channel(store: Store, channel: ChatInfo, user_id: int) -> bool:
    """``/channel @name off``; the channel stays in the user's list, marked stopped."""
    async with store.transaction() as db:
        await _note(db, channel)
        await db.execute(
            "INSERT OR IGNORE INTO channel_managers (channel_id, user_id) VALUES (?, ?)",
            [channel.id, user_id],
        )
    return await unsubscribe(store, channel.id, "stopped by a channel administrator")


async def managed_channels(store: Store, user_id: int) -> list[ChatRecord]:
    cols = ", ".join(f"c.{c.strip()}" for c in _COLUMNS.split(","))
    rows = await _fetch(
        store.db,
        f"SELECT {cols} FROM channel_managers m JOIN chats c ON c.id = m.channel_id"
        " WHERE m.user_id = ? ORDER BY c.title, c.id",
        [user_id],
    )
    return [_record(r) for r in rows]


@dataclass
class ResolvedChannels:
    found: list[ChatInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class _ChatGetter(Protocol):
    async def get_chat(self, chat_id: int | str) -> Any: ...


async def resolve_channels(bot: _ChatGetter, refs: Sequence[str | int]) -> ResolvedChannels:
    """``delivery.channels`` (``@name`` or numeric ids) as chats, with ``getChat``. A ref
    that fails is reported (``delivery.channels[1] @name: chat not found``), not fatal."""
    out = ResolvedChannels()
    for i, ref in enumerate(refs):
        where = f"delivery.channels[{i}] {ref}"
        try:
            out.found.append(ChatInfo.from_telegram(await bot.get_chat(ref)))
        except ChatMigrated as err:
            out.problems.append(f"{where}: migrated to {err.new_chat_id}; update the config")
        except TelegramError as err:
            out.problems.append(f"{where}: {err.message}")
    for problem in out.problems:
        log.warning("%s", problem)
    return out


async def sync_config_channels(
    store: Store,
    found: Sequence[ChatInfo],
    configured: Sequence[str | int],
    *,
    now: dt.datetime | None = None,
) -> list[int]:
    """Subscribe the resolved config channels; stop config chats no longer configured (a
    configured one that failed to resolve this time is left as it was). Returns the ids of
    chats stopped."""
    keep_ids = {ref for ref in configured if isinstance(ref, int)} | {c.id for c in found}
    keep_names = {ref[1:].lower() for ref in configured if isinstance(ref, str)}
    async with store.transaction() as db:
        for info in found:
            await _subscribe(db, info, None, "config", _now(now))
            await db.execute("UPDATE chats SET source = 'config' WHERE id = ?", [info.id])
        rows = await _fetch(
            db, "SELECT id, username FROM chats WHERE source = 'config' AND status = 'active'"
        )
        gone = [
            cid
            for cid, name in rows
            if cid not in keep_ids and (name or "").lower() not in keep_names
        ]
        for cid in gone:
            await db.execute(
                "UPDATE chats SET status = 'stopped', reason = ? WHERE id = ?",
                ["removed from delivery.channels", cid],
            )
    return gone


# -- watches ------------------------------------------------------------------------------


def normalize_terms(terms: str) -> str:
    """One spelling per watch: matching ignores case and extra spaces, so do duplicates."""
    return " ".join(fold(clean(terms)).split())


async def add_watch(store: Store, info: ChatInfo, terms: str) -> bool:
    """Watch ``terms`` (same syntax and matching as /find) in this chat. False if it already
    does; WatchLimitError past MAX_WATCHES; QueryError for terms /find would refuse."""
    key = normalize_terms(terms)
    parse_query(key)
    async with store.transaction() as db:
        await _note(db, info)
        rows = await _fetch(
            db,
            "SELECT count(*), coalesce(sum(terms = ?), 0) FROM watches WHERE chat_id = ?",
            [key, info.id],
        )
        total, exists = rows[0]
        if exists:
            return False
        if total >= MAX_WATCHES:
            raise WatchLimitError(f"at most {MAX_WATCHES} watches per chat; remove one first")
        await db.execute("INSERT INTO watches (chat_id, terms) VALUES (?, ?)", [info.id, key])
        return True


async def watches(store: Store, chat_id: int) -> list[str]:
    rows = await _fetch(
        store.db,
        "SELECT terms FROM watches WHERE chat_id = ? ORDER BY created_at, terms",
        [chat_id],
    )
    return [r[0] for r in rows]


async def remove_watch(store: Store, chat_id: int, terms: str) -> bool:
    async with store.transaction() as db:
        cur = await db.execute(
            "DELETE FROM watches WHERE chat_id = ? AND terms = ?",
            [chat_id, normalize_terms(terms)],
        )
        return cur.rowcount > 0
