"""The ``briefbot`` command line: thin over the library. Every error that a user can cause
ends here as one line on stderr and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.cli.archive import cmd_check, cmd_console, cmd_index, cmd_search, cmd_show, cmd_trend
from bot.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, CliError, Handler, _positive
from bot.cli.delivery import cmd_broadcast, cmd_pull, cmd_subscribers
from bot.cli.ops import cmd_backup, cmd_doctor, cmd_run
from bot.config import Config, ConfigError, load_config
from bot.db.database import damaged
from bot.errors import BriefbotError
from bot.logs import error_line, install_excepthook, setup_logging

__all__ = ["CliError", "build_parser", "main"]


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
