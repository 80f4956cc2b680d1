"""Bulk subscriber import and export for ``briefbot subscribers import|export``.

Part of the ``chats`` repository (:mod:`bot.db.chats` owns the table; this module holds its
bulk path so that 100,000 rows are a few ``executemany`` calls in one transaction instead of
100,000 ``subscribe`` calls). Rows come checked from :func:`bot.core.subscribers.parse_subscribers`.

A chat's own choice wins over any list: one that sent /stop (or whose channel admin
turned it off), blocked the bot, or moved to a supergroup is skipped, never subscribed again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from bot.core.schedule import slot_key
from bot.core.subscribers import NOW, Row
from bot.db.chats import ON_ARRIVAL
from bot.db.database import Database

# ``now`` in a list is what ``/time now`` stores: each issue as soon as it is ready.
ON_ARRIVAL_TIME: str | None = ON_ARRIVAL

# A stopped chat whose reason is one of these was stopped by the operator, not by the
# chat: an import may subscribe it again. NULL: known (watching, noted) but never stopped.
_OPERATOR_REASONS = ("removed from delivery.channels",)


@dataclass
class ImportReport:
    added: int = 0  # newly subscribed (unknown before, or known and not subscribed)
    updated: int = 0  # already subscribed; its time or language changed
    unchanged: int = 0  # already subscribed as listed
    skipped: list[tuple[Row, str]] = field(default_factory=list)  # (row, why)

    def summary(self) -> str:
        return (
            f"added {self.added}, updated {self.updated}, unchanged {self.unchanged}, "
            f"skipped {len(self.skipped)}"
        )


def _wanted_time(row: Row) -> str | None:
    return ON_ARRIVAL_TIME if row.time == NOW else row.time


def _skip_reason(status: str, reason: str | None, migrated_to: int | None) -> str | None:
    if status == "blocked":
        return f"blocked ({reason or 'unreachable'})"
    if status == "migrated":
        return f"migrated to {migrated_to}"
    if status == "stopped" and reason is not None and reason not in _OPERATOR_REASONS:
        return f"stopped ({reason})"
    return None


async def _known(
    db: Database, ids: Sequence[int]
) -> dict[int, tuple[str, str | None, int | None, str | None, str | None]]:
    """(status, reason, migrated_to, delivery_time, language) of the listed chats the
    database knows, read in chunks (SQLite limits bound parameters)."""
    out = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await db.rows(
            "SELECT id, status, reason, migrated_to, delivery_time, language FROM chats"
            f" WHERE id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for cid, *rest in rows:
            out[cid] = tuple(rest)
    return out


async def import_rows(
    db: Database, rows: Sequence[Row], *, now: dt.datetime | None = None
) -> ImportReport:
    """Subscribe every listed chat, in one transaction. Idempotent: importing the same
    list again adds and updates nothing."""
    stamp = slot_key(now or dt.datetime.now(dt.UTC))
    report = ImportReport()
    new: list[tuple[object, ...]] = []
    again: list[tuple[object, ...]] = []
    change: list[tuple[object, ...]] = []
    async with db.transaction():
        # Read inside the transaction: a /stop that lands meanwhile waits for it, then wins.
        known = await _known(db, [r.chat_id for r in rows])
        for row in rows:
            time, lang = _wanted_time(row), row.lang
            current = known.get(row.chat_id)
            if current is None:
                new.append((row.chat_id, row.type, lang, stamp, time, stamp))
                report.added += 1
                continue
            status, reason, migrated_to, old_time, old_lang = current
            why = _skip_reason(status, reason, migrated_to)
            if why is not None:
                report.skipped.append((row, why))
                continue
            # Not given: keep what the chat has (it may have chosen its own /time).
            time = old_time if row.time is None else time
            lang = old_lang if lang is None else lang
            if status != "active":
                again.append((stamp, time, lang, stamp, row.chat_id))
                report.added += 1
            elif (time, lang) != (old_time, old_lang):
                change.append((time, lang, row.chat_id))
                report.updated += 1
            else:
                report.unchanged += 1
        # last_slot = now, as /start does: the first delivery is the next slot, not a
        # catch-up of today's.
        await db.executemany(
            "INSERT INTO chats (id, type, language, subscribed_at, status, source,"
            " delivery_time, last_slot) VALUES (?, ?, ?, ?, 'active', 'user', ?, ?)",
            new,
        )
        await db.executemany(
            "UPDATE chats SET status = 'active', reason = NULL, subscribed_at = ?,"
            " source = 'user', delivery_time = ?, language = ?,"
            " last_slot = max(coalesce(last_slot, ''), ?),"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
            again,
        )
        await db.executemany(
            "UPDATE chats SET delivery_time = ?, language = ?,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
            change,
        )
    return report


async def export_rows(
    db: Database, *, everyone: bool = False, page: int = 5000
) -> AsyncIterator[tuple[int, str, str | None, str | None, str]]:
    """(chat_id, type, time, lang, status) in id order: active chats, or all with ``everyone``."""
    where = "" if everyone else "status = 'active' AND "
    sql = (
        "SELECT id, type, delivery_time, language, status FROM chats"
        f" WHERE {where}id > ? ORDER BY id LIMIT ?"
    )
    async for rows in db.pages(sql, (), page=page):
        for cid, kind, time, lang, status in rows:
            yield cid, kind, time, lang, status
