"""The offline console: a local chat with the bot in the terminal, on the local archive and
database, with no token and no network. It calls the same bot.replies functions as the
Telegram handlers and shows their HTML as plain text; buttons become numbered choices."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import tempfile
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import IO

from bot import replies
from bot.config import Config
from bot.core.i18n import LANGS, t
from bot.core.trend import Trend, sparkline
from bot.db.archive import Archive
from bot.db.chats import ChatInfo
from bot.db.database import Database
from bot.replies import Button, Ctx, Reply

PROMPT = "you> "
INTRO = (
    "briefbot console: type a command as you would in Telegram, e.g. /latest, "
    "/date 2025-02-14, /find 小米, /list, /help; a number picks a button; /quit leaves."
)


class _Text(HTMLParser):
    """Telegram HTML to terminal text: tags dropped, links as 'label <url>'."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.href: str | None = None
        self.label: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.href, self.label = dict(attrs).get("href") or "", []

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.href is not None:
            label = "".join(self.label)
            shown = self.href if label in (self.href, "") else f"{label} <{self.href}>"
            self.out.append(shown)
            self.href = None

    def handle_data(self, data: str) -> None:
        (self.label if self.href is not None else self.out).append(data)


def plain(message: str) -> str:
    parser = _Text()
    parser.feed(message)
    parser.close()
    return "".join(parser.out)


def show(reply: Reply) -> tuple[str, list[Button]]:
    """A reply as terminal text, and the buttons in the order their numbers show."""
    parts = [plain(m) for m in reply.messages]
    if reply.notice:
        parts.append(f"({reply.notice})")
    buttons = [b for row in reply.keyboard for b in row]
    if buttons:
        parts.append("  ".join(f"[{i}] {b.text}" for i, b in enumerate(buttons, 1)))
    return "\n\n".join(parts), buttons


Command = Callable[[Ctx, str], Awaitable[Reply]]


async def _lang(ctx: Ctx, arg: str) -> Reply:
    choice = arg.strip().lower()
    if choice not in LANGS:
        return Reply((html.escape(t(ctx.lang, "lang_usage")),))
    ctx.lang = choice
    return Reply((t(ctx.lang, "lang_set"),))


async def _local_only(ctx: Ctx, arg: str) -> Reply:
    return ctx.say(replies.NEEDS_TELEGRAM)


async def _start(ctx: Ctx, arg: str) -> Reply:
    # A deep link opens an issue; subscribing needs Telegram (nothing would be delivered).
    return await replies.by_date(ctx, arg) if arg.strip() else await _local_only(ctx, arg)


def trend_text(lang: str, trend: Trend, numbered: bool, png_path: str) -> str:
    """/trend in a terminal: a sparkline a term, the caption, and where the PNG went."""
    width = max(len(s.term) for s in trend.series)
    lines = [
        f"{s.term.ljust(width)}  {sparkline([n for _, n in s.counts])}  {s.total}"
        for s in trend.series
    ]
    periods = trend.periods
    lines.append(f"{' ' * width}  {periods[0]} … {periods[-1]}")
    lines += ["", replies.trend_caption(lang, trend, numbered), "", f"PNG: {png_path}"]
    return "\n".join(lines)


async def _trend(ctx: Ctx, arg: str) -> Reply:
    found = await replies.trend_of(ctx, arg)
    if isinstance(found, Reply):
        return found
    png, numbered = await asyncio.to_thread(replies.trend_picture, found)
    # A file of its own each time: a terminal cannot show the picture, an image viewer can.
    with tempfile.NamedTemporaryFile(prefix="briefbot-trend-", suffix=".png", delete=False) as f:
        f.write(png)
    return Reply((html.escape(trend_text(ctx.lang, found, numbered, f.name)),))


# The console's own chat: id 0 is never a Telegram chat (the planner skips it).
CONSOLE_CHAT = ChatInfo(0, "private", "console")

COMMANDS: dict[str, Command] = {
    "latest": lambda ctx, arg: replies.latest(ctx),
    "date": replies.by_date,
    "find": replies.find,
    "list": replies.month_list,
    "trend": _trend,
    "help": lambda ctx, arg: _async(replies.help_reply(ctx)),
    "lang": _lang,
    "start": _start,
    "stop": _local_only,
    "time": replies.delivery_time,
    "quiet": replies.quiet,
    "watch": replies.watch,
    "unwatch": replies.unwatch,
    "stats": replies.stats,
    "channel": lambda ctx, arg: replies.channel(ctx, arg, None),
    "broadcast": lambda ctx, arg: replies.broadcast(ctx, arg, None),
}


async def _async(reply: Reply) -> Reply:
    return reply


async def answer(ctx: Ctx, line: str, buttons: list[Button]) -> Reply | None:
    """One typed line to a reply; None means quit."""
    text = line.strip()
    if text in ("/quit", "/exit", "quit", "exit"):
        return None
    if text.isdigit() and buttons:
        n = int(text) if text.isascii() and len(text) < 6 else 0
        if 1 <= n <= len(buttons):
            return await replies.button(ctx, buttons[n - 1].data)
        return Reply((f"Pick a number from 1 to {len(buttons)}.",))
    if not text.startswith("/"):
        return await replies.find(ctx, text) if text else Reply()
    name, _, arg = text[1:].partition(" ")
    command = COMMANDS.get(name.split("@", 1)[0].lower())
    if command is None:
        return replies.unknown_reply(ctx)
    return await command(ctx, arg)


async def run_console(config: Config, stdin: IO[str], stdout: IO[str], lang: str = "zh") -> int:
    db = await Database.open(config.storage_path)
    try:
        archive = Archive(db)
        report = await archive.sync(config.content_dir)
        ctx = Ctx(
            archive,
            lang,
            dt.datetime.now(config.delivery.tz).date(),
            "briefbot",
            chat=CONSOLE_CHAT,
            user_id=CONSOLE_CHAT.id,
            is_admin=True,  # whoever runs the console operates this database
            delivery=config.delivery,
        )
        print(INTRO, file=stdout)
        print(
            f"({report.issues} issues, {report.items} items in {config.content_dir})", file=stdout
        )
        buttons: list[Button] = []
        while True:
            print(PROMPT, end="", file=stdout, flush=True)
            line = stdin.readline()
            if not line:
                print(file=stdout)
                return 0
            reply = await answer(ctx, line, buttons)
            if reply is None:
                return 0
            text, new_buttons = show(reply)
            buttons = new_buttons or buttons
            print(text, file=stdout, flush=True)
    finally:
        await db.close()
