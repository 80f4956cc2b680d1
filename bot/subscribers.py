"""``briefbot subscribers import FILE`` and ``briefbot subscribers export [--out FILE]``:
the command-line side of :mod:`bot.core.subscribers` (reading the file) and
:mod:`bot.db.importer` (writing the chats). Wired into :mod:`bot.cli` by ``add_parsers``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from bot.core.subscribers import csv_header, csv_line, parse_subscribers
from bot.db.database import Database
from bot.db.importer import export_rows, import_rows
from bot.errors import BriefbotError

if TYPE_CHECKING:
    from bot.config import Config

EXIT_OK, EXIT_FAIL = 0, 1
MAX_IMPORT_BYTES = 256 * 1024 * 1024  # 100,000 rows are ~3 MB


class ImportFileError(BriefbotError):
    """The subscriber file cannot be read at all."""

    code = EXIT_FAIL


def _read(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise ImportFileError(f"{path}: {size} bytes, over the {MAX_IMPORT_BYTES} byte limit")
        return path.read_bytes()
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a folder; give a CSV or JSON-lines file") from None
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except OSError as err:
        raise ImportFileError(f"{path}: cannot read it: {err.strerror or err}") from None


async def cmd_import(args: argparse.Namespace, config: Config) -> int:
    path = Path(args.file)
    rows, errors = parse_subscribers(str(path), _read(path))
    if errors:
        for error in errors:
            print(error, file=sys.stderr)
        print(
            f"{path}: {len(errors)} bad rows; nothing imported (fix them and run again)",
            file=sys.stderr,
        )
        return EXIT_FAIL
    db = await Database.open(config.storage_path)
    try:
        report = await import_rows(db, rows)
    finally:
        await db.close()
    for row, why in report.skipped[: args.show_skipped]:
        print(f"{path}:{row.line}: skipped chat {row.chat_id}: {why}", file=sys.stderr)
    hidden = len(report.skipped) - args.show_skipped
    if hidden > 0:
        print(f"... and {hidden} more skipped", file=sys.stderr)
    print(f"{path}: {len(rows)} chats: {report.summary()}")
    return EXIT_OK


async def cmd_export(args: argparse.Namespace, config: Config) -> int:
    db = await Database.open(config.storage_path)
    try:
        out = open(args.out, "w", encoding="utf-8", newline="") if args.out else sys.stdout  # noqa: SIM115
    except OSError as err:
        await db.close()
        raise ImportFileError(f"{args.out}: cannot write it: {err.strerror or err}") from None
    count = 0
    try:
        out.write(csv_header(status=args.all))
        async for cid, kind, time, lang, state in export_rows(db, everyone=args.all):
            out.write(csv_line(cid, kind, time, lang, state if args.all else None))
            count += 1
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
        await db.close()
    if args.out:
        print(f"{args.out}: {count} chats", file=sys.stderr)
    return EXIT_OK


def add_parsers(parser: argparse.ArgumentParser, _common: argparse.ArgumentParser) -> None:
    """``import`` and ``export`` under ``briefbot subscribers`` (which alone still lists)."""
    # --config may come before or after the action: here it defaults to "not given", or
    # the action's default would undo a --config given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="config file (default: ./config.yaml if present)",
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    p = sub.add_parser(
        "import",
        parents=[common],
        help="subscribe the chats listed in a CSV or JSON-lines file",
        description="Rows: chat_id[,type][,time][,lang] (optional header chat_id,type,time,lang)"
        ' or JSON lines {"chat_id": ..., "type": ..., "time": ..., "lang": ...}. type: private,'
        " group, supergroup, channel (a negative id needs it); time: HH:MM or now; lang: zh or"
        " en. Every row is checked first: one bad row and nothing is imported. A chat that"
        " sent /stop or blocked the bot is skipped.",
        epilog="Example: briefbot subscribers import chats.csv",
    )
    p.add_argument("file", help="the CSV or JSON-lines file")
    p.add_argument(
        "--show-skipped",
        type=int,
        default=20,
        metavar="N",
        help="list at most N skipped chats (default 20)",
    )
    p = sub.add_parser(
        "export",
        parents=[common],
        help="write the subscribed chats as CSV (chat_id,type,time,lang)",
        epilog="Example: briefbot subscribers export --out chats.csv",
    )
    p.add_argument("--out", metavar="FILE", help="write here instead of stdout")
    p.add_argument(
        "--all", action="store_true", help="include chats not subscribed, with a status column"
    )
