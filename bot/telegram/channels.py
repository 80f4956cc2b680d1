"""``delivery.channels`` from the config, resolved with getChat and subscribed at start."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram.error import ChatMigrated, TelegramError

from bot.db.channels import sync_config_channels
from bot.db.chats import ChatInfo
from bot.db.database import Database

log = logging.getLogger(__name__)


@dataclass
class ResolvedChannels:
    found: list[ChatInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class ChatGetter(Protocol):
    async def get_chat(self, chat_id: int | str) -> Any: ...


async def resolve_channels(bot: ChatGetter, refs: Sequence[str | int]) -> ResolvedChannels:
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


async def sync_channels(bot: ChatGetter, db: Database, refs: Sequence[str | int]) -> list[str]:
    """Resolve the configured channels and subscribe them (call at start). Returns the
    problems (also logged); a channel that failed keeps its old state."""
    resolved = await resolve_channels(bot, refs)
    await sync_config_channels(db, resolved.found, refs)
    return resolved.problems
