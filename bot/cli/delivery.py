"""Commands on delivery: broadcast, pull (the git source), subscribers (list, import, export)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING

from bot.config import Config
from bot.db.database import Database
from bot.logs import redact

if TYPE_CHECKING:
    from telegram import Bot

from bot.cli.common import (
    EXIT_FAIL,
    EXIT_OK,
    EXIT_USAGE,
    TOKEN_REJECTED,
    CliError,
    _note,
    _open_synced,
    _print_json,
    _progress,
    resolve_issue_date,
)


async def _check_token(bot: Bot) -> None:
    from telegram.error import InvalidToken, TelegramError

    try:
        await bot.initialize()  # getMe
    except InvalidToken:
        raise CliError(TOKEN_REJECTED, EXIT_USAGE) from None
    except TelegramError as err:
        raise CliError(f"cannot reach Telegram: {redact(str(err))}") from None


async def cmd_broadcast(args: argparse.Namespace, config: Config) -> int:
    """Post an issue now to every active chat lacking it, as the admin /broadcast does."""
    from bot.db import outbox
    from bot.delivery.engine import DeliveryEngine, DeliveryError, limits_for
    from bot.telegram.fastsend import FastTransport
    from bot.telegram.transport import make_bot

    token = "" if args.dry_run else config.token()
    store, _ = await _open_synced(config)
    limits = limits_for(config.delivery)
    bot = make_bot(config, token or "0:dry-run", pool=2)  # the token check (getMe)
    api = f"{config.telegram.api_base_url}/bot"
    transport = FastTransport(token or "0:dry-run", base_url=api, pool=limits.in_flight + 4)
    engine = DeliveryEngine(store, transport, config.delivery, limits=limits)
    try:
        if not args.dry_run:
            await _check_token(bot)  # before anything is queued: a rejected token queues nothing
        date = await resolve_issue_date(store, args.date, dt.date.today()) if args.date else None
        try:
            plan = await engine.broadcast_now(date, "cli", dry_run=args.dry_run)
        except DeliveryError as err:
            raise CliError(str(err)) from None
        verb = "would post" if args.dry_run else "posting"
        print(f"{plan.issue.isoformat()}: {verb} {plan.messages} messages to {plan.chats} chats")
        # What an earlier run queued for this issue and did not send (it was stopped, say)
        # goes out now too, rather than waiting for a bot to start.
        earlier = [
            (bid, n)
            for bid, n in await outbox.open_broadcasts(store.db, plan.issue)
            if bid != plan.broadcast_id
        ]
        if earlier:
            pending = sum(n for _, n in earlier)
            what = "would also send" if args.dry_run else "also sending"
            print(
                f"{plan.issue.isoformat()}: {what} {pending} messages pending from an earlier run"
            )
        ids = [b for b, _ in earlier] + ([plan.broadcast_id] if plan.broadcast_id else [])
        if args.dry_run or not ids:
            return EXIT_OK
        json_logs = args.log_format == "json"  # no progress bar among JSON lines
        await engine.start()
        try:
            reports = [await engine.wait(bid, None if json_logs else _progress) for bid in ids]
        finally:
            await engine.stop()
        if not json_logs:
            print(file=sys.stderr)
        for report in reports:
            if report:
                print(report.summary())
        return EXIT_OK if all(r and not r.failed for r in reports) else EXIT_FAIL
    finally:
        await transport.close()
        await bot.shutdown()
        await store.db.close()


async def cmd_pull(args: argparse.Namespace, config: Config) -> int:
    """Fetch the git source once, index it, print what changed."""
    from bot.source.pull import pull

    return await pull(config, as_json=args.json)


async def cmd_subscribers(args: argparse.Namespace, config: Config) -> int:
    from bot.db import chats

    if getattr(args, "action", None):
        from bot.subscribers import cmd_export, cmd_import

        run = cmd_import if args.action == "import" else cmd_export
        return await run(args, config)
    db = await Database.open(config.storage_path)
    try:
        records = await chats.list_chats(db)
    finally:
        await db.close()
    if args.json:
        _print_json([r.as_dict() for r in records])
        return EXIT_OK
    for r in records:
        when = r.delivery_time.strftime("%H:%M") if r.delivery_time else "default"
        last = r.last_issue.isoformat() if r.last_issue else "-"
        print(f"{r.id}\t{r.type}\t{r.status.value}\t{when}\t{last}\t{r.title}")
    _note(args, f"{len(records)} chats")
    return EXIT_OK
