"""What the bot answers: one function per command or button, returning a Reply.

Shared by the Telegram handlers and the offline console, so both say the same thing.
These functions read and write the database but never talk to Telegram: what only
Telegram can tell (is this user a group administrator, does this channel exist) comes in
through :class:`Ctx` as callables the edge provides. Every user-supplied string that
reaches a reply is escaped here.
"""

from __future__ import annotations

from bot.replies.archive import (
    button,
    by_date,
    find,
    help_reply,
    inline,
    issue_reply,
    latest,
    month_list,
    open_date,
    unknown_reply,
)
from bot.replies.base import (
    FIND_PAGE,
    INLINE_PAGE,
    NEEDS_TELEGRAM,
    Button,
    Ctx,
    InlineAnswer,
    InlineResult,
    Reply,
    find_data,
)
from bot.replies.delivery import (
    ChannelFacts,
    broadcast,
    channel,
    delivery_time,
    format_stats,
    quiet,
    start,
    stats,
    stop,
    unwatch,
    watch,
)
from bot.replies.trend import (
    CAPTION_LIMIT,
    load_trend,
    trend,
    trend_caption,
    trend_of,
    trend_picture,
)

__all__ = [
    "CAPTION_LIMIT",
    "FIND_PAGE",
    "INLINE_PAGE",
    "NEEDS_TELEGRAM",
    "Button",
    "ChannelFacts",
    "Ctx",
    "InlineAnswer",
    "InlineResult",
    "Reply",
    "broadcast",
    "button",
    "by_date",
    "channel",
    "delivery_time",
    "find",
    "find_data",
    "format_stats",
    "help_reply",
    "inline",
    "issue_reply",
    "latest",
    "load_trend",
    "month_list",
    "open_date",
    "quiet",
    "start",
    "stats",
    "stop",
    "trend",
    "trend_caption",
    "trend_of",
    "trend_picture",
    "unknown_reply",
    "unwatch",
    "watch",
]
