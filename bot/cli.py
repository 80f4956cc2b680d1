"""The ``briefbot`` command line: thin over the library. Every error that a user can cause
ends here as one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot import __version__
from bot.config import Config, ConfigError, load_config
from bot.core.content import read_archive
from bot.core.dates import DateError
from bot.core.model import Issue, Problem, Severity
from bot.core.render import issue_plain, search_page_plain
from bot.core.search import QueryError
from bot.db.archive import Archive
from bot.db.database import Database, damaged
from bot.db.sync import SyncReport
from bot.errors import BriefbotError
from bot.logs import error_line, install_excepthook, json_line, redact, setup_logging

if TYPE_CHECKING:
    from telegram import Bot

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
TOKEN_REJECTED = "the token was rejected by Telegram: check telegram.token or TELEGRAM_BOT_TOKEN"

Handler = Callable[[argparse.Namespace, Config], Coroutine[Any, Any, int]]


class CliError(BriefbotError):
    """A message for the user and the exit code to end with."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _issue_json(issue: Issue) -> dict[str, Any]:
    return {
        "date": issue.key,
        "title": issue.title,
        "items": [{"number": i.number, "text": i.text, "urls": list(i.urls)} for i in issue.items],
    }


def _note(args: argparse.Namespace, text: str) -> None:
    """A line for the person at the terminal on stderr (a JSON INFO line with --log-format
    json: then every line on stderr is JSON)."""
    if getattr(args, "log_format", None) == "json":
        print(json_line("INFO", "briefbot", redact(text)), file=sys.stderr)
    else:
        print(text, file=sys.stderr)


def _problem_lines(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


async def _open_synced(config: Config) -> tuple[Archive, SyncReport]:
    db = await Database.open(config.storage_path)
    try:
        archive = Archive(db)
        if config.content_source is not None:  # the git working copy: briefbot pull fetches
            from bot.source.follow import Follower

            return archive, await Follower(config, archive).index()
        return archive, await archive.sync(config.content_dir)
    except BaseException:
        await db.close()
        raise


# -- commands ----------------------------------------------------------------------------


def _future_issues(issues: Iterable[Issue], config: Config) -> list[Problem]:
    """An issue dated after today (with a day of slack, in delivery.timezone) is a typo
    such as ``## 2052.02.15``: an error, and the planner never delivers it."""
    from bot.delivery.planner import horizon

    limit = horizon(dt.datetime.now(dt.UTC), config.delivery.tz)
    return [
        Problem(
            i.file,
            i.line,
            Severity.ERROR,
            f"issue {i.date.isoformat()} is dated after today; fix the heading's date",
        )
        for i in issues
        if i.date > limit
    ]


async def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from bot.source.follow import content_root

    root = Path(args.dir) if args.dir else content_root(config)
    archive = read_archive(root)
    problems = sorted(
        [*archive.problems, *_future_issues(archive.issues.values(), config)],
        key=lambda p: (p.file, p.line),
    )
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if args.json:
        _print_json(
            {
                "issues": len(archive.issues),
                "items": archive.item_count,
                "problems": [p.as_dict() for p in problems],
            }
        )
    else:
        for p in problems:
            print(p)
        warnings = len(problems) - len(errors)
        _note(
            args,
            f"{root}: {len(archive.issues)} issues, {archive.item_count} items, "
            f"{len(errors)} errors, {warnings} warnings",
        )
    return EXIT_FAIL if errors else EXIT_OK


async def cmd_index(args: argparse.Namespace, config: Config) -> int:
    if args.rebuild:
        return await _rebuild(config)
    store, report = await _open_synced(config)
    await store.db.close()
    if args.json:
        _print_json(
            {
                "issues": report.issues,
                "items": report.items,
                "added": [d.isoformat() for d in report.added],
                "updated": [d.isoformat() for d in report.updated],
                "removed": [d.isoformat() for d in report.removed],
                "files_read": report.files_read,
                "problems": [p.as_dict() for p in report.problems],
            }
        )
        return EXIT_OK
    if report.problems:
        print(_problem_lines(report.problems))
    for label, dates in (
        ("added", report.added),
        ("updated", report.updated),
        ("removed", report.removed),
    ):
        if dates:
            shown = ", ".join(d.isoformat() for d in dates[:10])
            more = f" and {len(dates) - 10} more" if len(dates) > 10 else ""
            print(f"{label} {len(dates)}: {shown}{more}")
    print(
        f"{config.storage_path}: {report.issues} issues, {report.items} items "
        f"({report.files_read} files read, {len(report.problems)} problems)"
    )
    return EXIT_OK


async def _rebuild(config: Config) -> int:
    from bot.db.rebuild import rebuild

    done = await rebuild(config.storage_path, config.content_dir)
    for problem in done.report.problems:
        print(problem)
    kept = ", ".join(f"{table} {n}" for table, n in done.kept.items()) or "nothing"
    print(f"{config.storage_path}: rebuilt: {done.report.issues} issues, {done.report.items} items; kept {kept}")
    for table, why in done.lost.items():
        print(f"{config.storage_path}: {table}: {why}", file=sys.stderr)
    if done.old:
        print(f"the previous file is {done.old}", file=sys.stderr)
    return EXIT_OK


async def resolve_issue_date(store: Archive, text: str, today: dt.date) -> dt.date:
    """A typed date to an issue date (``latest`` is the newest issue)."""
    try:
        when = await store.resolve_date(text, today)
    except DateError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    if when is None:
        raise CliError(
            "the archive is empty: add files to the content folder, then run briefbot index"
        )
    return when


async def cmd_show(args: argparse.Namespace, config: Config) -> int:
    store, _ = await _open_synced(config)
    try:
        date = await resolve_issue_date(store, args.date, dt.date.today())
        issue = await store.issue(date)
        if issue is None:
            before, after = await store.neighbors(date)
            near = ", ".join(d.isoformat() for d in (before, after) if d) or "none"
            raise CliError(f"no issue on {date.isoformat()}; nearest: {near}")
    finally:
        await store.db.close()
    if args.json:
        _print_json(_issue_json(issue))
    else:
        print(issue_plain(issue, args.lang))
    return EXIT_OK


async def cmd_search(args: argparse.Namespace, config: Config) -> int:
    store, _ = await _open_synced(config)
    try:
        page = await store.search(" ".join(args.terms), offset=args.offset, limit=args.limit)
    except QueryError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    finally:
        await store.db.close()
    if args.json:
        _print_json(
            {
                "total": page.total,
                "results": [
                    {
                        "date": h.date.isoformat(),
                        "number": h.number,
                        "text": h.text,
                        "urls": list(h.urls),
                    }
                    for h in page.hits
                ],
            }
        )
    else:
        print(search_page_plain(page, args.lang))
    return EXIT_OK


async def cmd_trend(args: argparse.Namespace, config: Config) -> int:
    from bot import replies
    from bot.core.search import parse_query
    from bot.core.trend import MAX_SERIES, sparkline, to_json

    text = " ".join(args.terms)
    try:
        query = parse_query(text)
    except QueryError as err:
        raise CliError(str(err), EXIT_USAGE) from None
    if not query.terms or len(query.terms) > MAX_SERIES:
        raise CliError(f"give 1 to {MAX_SERIES} terms (and at most one date filter)", EXIT_USAGE)
    store, _ = await _open_synced(config)
    try:
        trend = await replies.load_trend(store, query)
    finally:
        await store.db.close()
    found = trend is not None and trend.total > 0
    numbered = False  # the legend numbers the terms when no font has them: say which is which
    if args.png:
        if trend is None or not found:
            raise CliError(f"nothing found for {text!r}: no chart written")
        png, numbered = await asyncio.to_thread(replies.trend_picture, trend)
        Path(args.png).write_bytes(png)
    if args.json:
        _print_json(to_json(trend) if trend else {"bucket": "month", "total": 0, "series": []})
    elif trend is None or not found:
        print(f"nothing found for {text!r}")
    else:
        for s in trend.series:
            print(f"{s.term}\t{sparkline([n for _, n in s.counts])}\t{s.total}")
        print(replies.trend_caption(args.lang, trend, numbered))
    if args.png and not args.json:
        print(f"PNG: {args.png}")
    return EXIT_OK


async def cmd_console(args: argparse.Namespace, config: Config) -> int:
    from bot.console import run_console

    # Bytes that are not UTF-8 (a pasted file, a wrong terminal setting) become U+FFFD
    # instead of ending the session with a UnicodeDecodeError.
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="replace")
    return await run_console(config, sys.stdin, sys.stdout, args.lang)


def _not_invalid_token(record: logging.LogRecord) -> bool:
    from telegram.error import InvalidToken

    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, InvalidToken) and "Invalid token" not in record.getMessage()


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    """The real bot. Synchronous: python-telegram-bot owns the event loop."""
    from telegram.error import InvalidToken

    from bot.telegram.app import run

    token = config.token()
    secrets = [token, config.telegram.webhook.secret_token or ""]
    setup_logging(args.log_level or config.log_level, secrets, args.log_format)
    # PTB logs a rejected token with a traceback before raising it; the line below says it.
    logging.getLogger("telegram.ext").addFilter(_not_invalid_token)
    try:
        run(config, token)
    except InvalidToken:
        raise CliError(TOKEN_REJECTED, EXIT_USAGE) from None
    except BriefbotError:
        raise
    except Exception as err:
        # Start-up failed (post_shutdown has closed what was opened): one line, not a
        # traceback, and no secret in it.
        raise CliError(f"cannot start: {redact(f'{type(err).__name__}: {err}', secrets)}") from None
    return EXIT_OK


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    print(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="",
        file=sys.stderr,
        flush=True,
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


async def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    """A consistent copy of the database, safe while the bot runs (docs/operations-backup.md)."""
    from bot.db.backup import BackupError, backup

    try:
        summary = await backup(config.storage_path, Path(args.file), force=args.force)
    except BackupError as err:
        raise CliError(str(err)) from None
    print(summary.line())
    return EXIT_OK


async def cmd_doctor(args: argparse.Namespace) -> int:
    """Loads the config itself: a config that does not load is its first FAIL line."""
    from bot.doctor import run_checks

    return await run_checks(args.config, sys.stdout)


# -- parser ------------------------------------------------------------------------------


MAX_ARG = 10**9  # results to skip or show: SQLite needs a 64-bit integer, people far less


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_ARG:
        raise argparse.ArgumentTypeError(f"must be a whole number from 0 to {MAX_ARG}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", help="config file (default: ./config.yaml if present)"
    )
    parser = argparse.ArgumentParser(
        prog="briefbot",
        description="A Telegram bot for the daily tech brief (行业快讯) and its searchable archive.",
        epilog="Example: briefbot show latest; briefbot search 小米 2025-02",
    )
    parser.add_argument("--version", action="version", version=f"briefbot {__version__}")
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="stderr as text or one JSON object per line (default: logging.format)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "check",
        parents=[common],
        help="validate the content files",
        epilog="Example: briefbot check content/ --json",
    )
    p.add_argument("dir", nargs="?", help="content folder (default: content.dir)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser(
        "index",
        parents=[common],
        help="build or update the search index",
        epilog="Example: briefbot index",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="build a new database from the archive, keeping the subscriptions and outbox"
        " rows the old one can give (for a damaged file; stop the bot first)",
    )
    p.set_defaults(handler=cmd_index)

    p = sub.add_parser(
        "show",
        parents=[common],
        help="print one issue as the bot renders it",
        epilog="Example: briefbot show 2025-02-14",
    )
    p.add_argument("date", help="2025-02-14, 2月14日, yesterday, latest, ...")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="labels language")
    p.set_defaults(handler=cmd_show)

    p = sub.add_parser(
        "search",
        parents=[common],
        help="search the archive",
        epilog="Example: briefbot search --limit 5 小米 2025-02",
    )
    p.add_argument("terms", nargs="+", help="words that must all appear; optional date filter")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", type=_positive, default=10, help="results per page (default 10)")
    p.add_argument("--offset", type=_positive, default=0, help="results to skip (default 0)")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="labels language")
    p.set_defaults(handler=cmd_search)

    p = sub.add_parser(
        "trend",
        parents=[common],
        help="matching items per month or week, one series a term",
        epilog="Example: briefbot trend 小米 华为 2024..2025 --png trend.png",
    )
    p.add_argument("terms", nargs="+", help="1-4 terms (one series each); optional date filter")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--png", metavar="FILE", help="also write the chart as a PNG")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="labels language")
    p.set_defaults(handler=cmd_trend)

    p = sub.add_parser(
        "console",
        parents=[common],
        help="chat with the bot offline in the terminal",
        epilog="Example: briefbot console (then type /find 小米)",
    )
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="reply language")
    p.set_defaults(handler=cmd_console)

    p = sub.add_parser(
        "broadcast",
        parents=[common],
        help="post an issue now to every subscriber lacking it",
        epilog="Example: briefbot broadcast --date 2025-02-14 --dry-run",
    )
    p.add_argument("--date", help="the issue (default: the newest)")
    p.add_argument("--dry-run", action="store_true", help="only count chats and messages")
    p.set_defaults(handler=cmd_broadcast)

    p = sub.add_parser(
        "pull",
        parents=[common],
        help="fetch the git source (content.source) once and index it",
        epilog="Example: briefbot pull --json",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.set_defaults(handler=cmd_pull)

    p = sub.add_parser(
        "subscribers",
        parents=[common],
        help="list chats and their status",
        epilog="Example: briefbot subscribers --json",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_subscribers)
    from bot.subscribers import add_parsers as add_subscriber_parsers

    add_subscriber_parsers(p, common)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="run the Telegram bot (needs a token)",
        epilog="Example: TELEGRAM_BOT_TOKEN=123:ABC briefbot run --config config.yaml",
    )
    p.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        type=str.upper,
        help="override logging.level (the token is never logged)",
    )
    p.set_defaults(sync_handler=cmd_run)

    p = sub.add_parser(
        "backup",
        parents=[common],
        help="copy the database consistently, even while the bot runs",
        epilog="Example: briefbot backup /backups/briefbot-$(date +%%F).sqlite3",
    )
    p.add_argument("file", help="the backup file to write")
    p.add_argument("--force", action="store_true", help="replace the file if it exists")
    p.set_defaults(handler=cmd_backup)

    p = sub.add_parser(
        "doctor",
        parents=[common],
        help="check the config, token, content, database and disk; say what to fix",
        epilog="Example: briefbot doctor --config config.yaml",
    )
    p.set_defaults(raw_handler=cmd_doctor)

    return parser


def main(argv: Sequence[str] | None = None) -> int:
    install_excepthook()  # a traceback that still escapes is printed without secrets
    parser = build_parser()
    args = parser.parse_args(argv)
    fmt = args.log_format or "text"
    config: Config | None = None
    try:
        if getattr(args, "raw_handler", None):
            raw: int = asyncio.run(args.raw_handler(args))
            return raw
        config = load_config(args.config)
        fmt = args.log_format = args.log_format or config.log_format
        if fmt == "json" and not getattr(args, "sync_handler", None):
            # Warnings of other commands as JSON lines too (`run` sets up its own logging).
            setup_logging("WARNING", config.secrets(), fmt)
        if getattr(args, "sync_handler", None):
            code: int = args.sync_handler(args, config)
            return code
        handler: Handler = args.handler
        return asyncio.run(handler(args, config))
    except sqlite3.DatabaseError as err:  # a damaged page met in the middle of a command
        where = config.storage_path if config else Path("the database")
        print(error_line(damaged(where, err), fmt), file=sys.stderr)
        return EXIT_FAIL
    except (ConfigError, BriefbotError) as err:
        print(error_line(str(err), fmt), file=sys.stderr)
        return getattr(err, "code", EXIT_USAGE if isinstance(err, ConfigError) else EXIT_FAIL)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `briefbot show latest | head`: the reader left; that is not an error.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - swallow the final flush
        return EXIT_OK
